// The other process of the HTTP fault tests, killed with SIGKILL mid-stream.
//   serve        Kestrel with the library on 127.0.0.1 (or --listen <ip>), HTTP/1.1 and h2c (random ports): prints
//                "PORT <h1> <h2c>"; GET /pattern/{n} streams n bytes of the test pattern, /blocks/{n} n bytes of
//                Pattern.Blocks, /stats the acceleration health data.
//   fetch        --h1 <base url> --h2c <base url> --proto h1|h2c: through IHttpClientFactory with the library, 32 GETs
//                of /blocks/{0 B..64 MiB} at once, every byte checked; prints one JSON line: body bytes, the first
//                error, the server's /stats before and after, and the client's own at the end.
//   echo-client  --url <url> [--h2c true]: POSTs an endless pattern body to <url> through IHttpClientFactory with
//                the library; prints "STREAMING" once 1 MiB is sent.
// Library options come as configuration arguments, e.g. --SidecarlessAcceleration:PinRoot /path. It also runs published
// with native AOT (NativeAotTests), so it uses no reflection: its JSON goes through PeerJson's generated code.
using System.Text.Json.Serialization;
using Accel.Testing;
using Microsoft.Extensions.Diagnostics.HealthChecks;

string role = args[0];
string[] config = args[1..];
if (role == "serve")
{
    var builder = WebApplication.CreateSlimBuilder(config);
    builder.Logging.ClearProviders();
    builder.WebHost.ConfigureKestrel(k =>
    {
        var address = System.Net.IPAddress.Parse(builder.Configuration["listen"] ?? "127.0.0.1");
        k.Listen(address, 0, o => o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1);
        k.Listen(address, 0, o => o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2);
    });
    builder.Services.AddSidecarlessAcceleration();
    var app = builder.Build();
    app.MapGet("/pattern/{n:long}", async (long n, HttpContext ctx) =>
    {
        ctx.Response.ContentLength = n;
        await Pattern.WriteAsync(ctx.Response.Body, n, ctx.RequestAborted);
    });
    app.MapGet("/blocks/{n:long}", async (long n, HttpContext ctx) =>
    {
        ctx.Response.ContentLength = n;
        await Pattern.Blocks.WriteAsync(ctx.Response.Body, n, ctx.RequestAborted);
    });
    app.MapGet("/stats", async (HealthCheckService health) => Results.Text(await StatsAsync(health), "application/json"));
    await app.StartAsync();
    Console.WriteLine($"PORT {string.Join(' ', app.Urls.Select(u => new Uri(u).Port))}");
    await app.WaitForShutdownAsync();
    return 0;
}

if (role == "echo-client")
{
    var builder = Host.CreateApplicationBuilder(config);
    builder.Logging.ClearProviders();
    builder.Services.AddSidecarlessAcceleration();
    builder.Services.AddHttpClient("peer");
    using IHost host = builder.Build();
    HttpClient http = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("peer");
    // An endless chunked upload; the echo comes back on the same connection. "STREAMING" once 1 MiB is sent:
    // the server is then mid-request and mid-response.
    bool announced = false;
    var content = new Pattern.Content(long.MaxValue / 2, knownLength: false, progress: sent =>
    {
        if (!announced && sent > 1 << 20)
        {
            announced = true;
            Console.WriteLine("STREAMING");
        }
    });
    http.Timeout = Timeout.InfiniteTimeSpan;
    using var request = new HttpRequestMessage(HttpMethod.Post, builder.Configuration["url"]) { Content = content };
    if (builder.Configuration["h2c"] == "true")
    {
        request.Version = System.Net.HttpVersion.Version20;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
    }
    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    // HTTP/2 returns here as soon as the echo starts: keep reading it while the upload goes on.
    await using Stream echo = await response.Content.ReadAsStreamAsync();
    byte[] buffer = new byte[64 * 1024];
    while (await echo.ReadAsync(buffer) > 0)
    {
    }

    return 1; // the echo ended: not reached while the test is running, it kills the process
}

if (role == "fetch")
{
    var builder = Host.CreateApplicationBuilder(config);
    builder.Logging.ClearProviders();
    builder.Services.AddSidecarlessAcceleration();
    builder.Services.AddHttpClient("h1", c => c.BaseAddress = new Uri(builder.Configuration["h1"]!));
    builder.Services.AddHttpClient("h2c", c =>
    {
        c.BaseAddress = new Uri(builder.Configuration["h2c"]!);
        c.DefaultRequestVersion = System.Net.HttpVersion.Version20;
        c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
    });
    using IHost host = builder.Build();
    var clients = host.Services.GetRequiredService<IHttpClientFactory>();
    HttpClient http = clients.CreateClient(builder.Configuration["proto"]!);
    string before = await clients.CreateClient("h1").GetStringAsync("/stats");
    long[] sizes = [0, 1024, 64 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20];
    long bytes = 0;
    string? error = null;
    await Parallel.ForEachAsync(Enumerable.Range(0, 32), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
    {
        long size = sizes[i % sizes.Length];
        using var response = await http.GetAsync($"/blocks/{size}", HttpCompletionOption.ResponseHeadersRead, ct);
        string? e = response.IsSuccessStatusCode ? await Pattern.Blocks.VerifyAsync(await response.Content.ReadAsStreamAsync(ct), size, ct) : $"HTTP {(int)response.StatusCode}";
        if (e is not null)
        {
            Interlocked.CompareExchange(ref error, $"{size}: {e}", null);
        }

        Interlocked.Add(ref bytes, size);
    });
    string after = await clients.CreateClient("h1").GetStringAsync("/stats");
    string own = await StatsAsync(host.Services.GetRequiredService<HealthCheckService>());
    Console.WriteLine($"{{\"bytes\":{bytes},\"error\":{System.Text.Json.JsonSerializer.Serialize(error, PeerJson.Default.String)},\"before\":{before},\"after\":{after},\"client\":{own}}}");
    return 0;
}

Console.Error.WriteLine($"unknown role {role}");
return 2;

// The library's health data: the process's bypass counts.
static async Task<string> StatsAsync(HealthCheckService health)
    => System.Text.Json.JsonSerializer.Serialize((await health.CheckHealthAsync()).Entries["sidecarless-acceleration"].Data, PeerJson.Default.IReadOnlyDictionaryStringObject);

/// <summary>The JSON this program writes, with the types the health data's values have.</summary>
[JsonSerializable(typeof(IReadOnlyDictionary<string, object>))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(long))]
internal sealed partial class PeerJson : JsonSerializerContext;
