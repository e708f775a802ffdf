// The other process of the HTTP fault tests, killed with SIGKILL mid-stream.
//   serve        Kestrel (HTTP/1.1 on 127.0.0.1, random port) with the library: prints "PORT <n>";
//                GET /pattern/{n} streams n bytes of the test pattern.
//   echo-client  --url <url>: POSTs an endless pattern body to the url's /echo through IHttpClientFactory with
//                the library while reading the echo; prints "STREAMING" once data flows both ways.
// Library options come as configuration arguments, e.g. --SidecarlessAcceleration:PinRoot /path.
using Accel.Testing;

string role = args[0];
string[] config = args[1..];
if (role == "serve")
{
    var builder = WebApplication.CreateSlimBuilder(config);
    builder.Logging.ClearProviders();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    builder.Services.AddSidecarlessAcceleration();
    var app = builder.Build();
    app.MapGet("/pattern/{n:long}", async (long n, HttpContext ctx) =>
    {
        ctx.Response.ContentLength = n;
        await Pattern.WriteAsync(ctx.Response.Body, n, ctx.RequestAborted);
    });
    await app.StartAsync();
    Console.WriteLine($"PORT {new Uri(app.Urls.First()).Port}");
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
    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    return 1; // never reached: the process is killed
}

Console.Error.WriteLine($"unknown role {role}");
return 2;
