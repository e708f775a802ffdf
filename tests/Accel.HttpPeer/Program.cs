// The other process of the HTTP fault tests, killed with SIGKILL mid-stream.
//   serve        Kestrel with the library on 127.0.0.1, HTTP/1.1 and h2c (random ports): prints "PORT <h1> <h2c>";
//                GET /pattern/{n} streams n bytes of the test pattern.
//   echo-client  --url <url> [--h2c true]: POSTs an endless pattern body to <url> through IHttpClientFactory with
//                the library; prints "STREAMING" once 1 MiB is sent.
// Library options come as configuration arguments, e.g. --SidecarlessAcceleration:PinRoot /path.
using Accel.Testing;

string role = args[0];
string[] config = args[1..];
if (role == "serve")
{
    var builder = WebApplication.CreateSlimBuilder(config);
    builder.Logging.ClearProviders();
    builder.WebHost.ConfigureKestrel(k =>
    {
        k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1);
        k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2);
    });
    builder.Services.AddSidecarlessAcceleration();
    var app = builder.Build();
    app.MapGet("/pattern/{n:long}", async (long n, HttpContext ctx) =>
    {
        ctx.Response.ContentLength = n;
        await Pattern.WriteAsync(ctx.Response.Body, n, ctx.RequestAborted);
    });
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

Console.Error.WriteLine($"unknown role {role}");
return 2;
