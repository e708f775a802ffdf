// The YARP demo: a client, a YARP gateway and a backend, three processes, each with the library. The client's calls
// reach the gateway through the fast path (Kestrel's side and IHttpClientFactory's side), and the gateway forwards
// them to the backend through it too (one line on the reverse proxy builder). Prints what each hop did.
//
//   dotnet run --project examples/Accel.YarpDemo -c Release          start backend and gateway, call through the gateway
//   dotnet run --project examples/Accel.YarpDemo -- backend --urls http://127.0.0.1:5001
//   dotnet run --project examples/Accel.YarpDemo -- gateway --urls http://127.0.0.1:5000 --Backend http://127.0.0.1:5001
using System.Diagnostics;
using Accel.AspNetCore;
using Accel.Examples;
using Yarp.ReverseProxy.Configuration;

byte[] payload = new byte[16 * 1024];
Random.Shared.NextBytes(payload);

switch (args.FirstOrDefault())
{
    case "backend":
    {
        var builder = WebApplication.CreateSlimBuilder(args[1..]);
        builder.Services.AddSidecarlessAcceleration(); // the one line
        var app = builder.Build();
        app.MapGet("/data", () => Results.Bytes(payload));
        app.MapGet("/hop", (HttpContext ctx) => Hop(ctx));
        await Serve(app);
        return 0;
    }

    case "gateway":
    {
        var builder = WebApplication.CreateSlimBuilder(args[1..]);
        builder.Services.AddSidecarlessAcceleration(); // the one line, for Kestrel (calls coming in)
        builder.Services.AddReverseProxy()
            .LoadFromMemory(
                [new RouteConfig { RouteId = "backend", ClusterId = "backend", Match = new RouteMatch { Path = "{**rest}" } }],
                [new ClusterConfig { ClusterId = "backend", Destinations = new Dictionary<string, DestinationConfig> { ["one"] = new() { Address = builder.Configuration["Backend"]! } } }])
            .ConfigureHttpClient((_, handler) => handler.ConnectCallback = SidecarlessAcceleration.ConnectCallback); // and for YARP (calls going out)
        var app = builder.Build();
        app.MapGet("/gateway/hop", (HttpContext ctx) => Hop(ctx));
        app.MapReverseProxy();
        await Serve(app);
        return 0;
    }

    default:
    {
        using Process backend = Start("backend", "--urls", "http://127.0.0.1:0");
        string backendUrl = await ListeningAsync(backend);
        using Process gateway = Start("gateway", "--urls", "http://127.0.0.1:0", "--Backend", backendUrl);
        try
        {
            string gatewayUrl = await ListeningAsync(gateway);
            var builder = Host.CreateApplicationBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddSidecarlessAcceleration(); // the one line, for the client
            builder.Services.AddHttpClient("gateway", c => c.BaseAddress = new Uri(gatewayUrl));
            using IHost host = builder.Build();
            await host.StartAsync();
            HttpClient http = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("gateway");
            long bytes = 0;
            for (int i = 0; i < 200; i++)
            {
                bytes += (await http.GetByteArrayAsync("/data")).Length;
            }

            Console.WriteLine($"200 calls through the gateway, {bytes >> 10} KiB");
            Console.WriteLine($"client  -> gateway: {await http.GetStringAsync("/gateway/hop")}");
            Console.WriteLine($"gateway -> backend: {await http.GetStringAsync("/hop")}");
            await host.StopAsync();
            return 0;
        }
        finally
        {
            ServiceProcess.Stop(gateway);
            ServiceProcess.Stop(backend);
        }
    }
}

// The server's side of the connection this request came on: what the hop before it sent, redirected or through TCP.
static string Hop(HttpContext ctx) => ctx.Features.Get<IAccelerationFeature>() is { } f
    ? $"accelerated={f.IsAccelerated} path={f.Outbound.Path} redirected={f.Outbound.RedirectedBytes} B tcp={f.Outbound.TcpBytes} B"
    : "not served by the accelerated transport";

static async Task Serve(WebApplication app)
{
    await app.StartAsync();
    Console.WriteLine($"LISTENING {app.Urls.First()}");
    await app.WaitForShutdownAsync();
}

static Process Start(params string[] args)
{
    var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true };
    psi.ArgumentList.Add(typeof(Program).Assembly.Location);
    foreach (string a in args)
    {
        psi.ArgumentList.Add(a);
    }

    return Process.Start(psi)!;
}

static async Task<string> ListeningAsync(Process p)
{
    string? line;
    while ((line = await p.StandardOutput.ReadLineAsync()) is not null)
    {
        if (line.StartsWith("LISTENING ", StringComparison.Ordinal))
        {
            return line["LISTENING ".Length..];
        }
    }

    throw new InvalidOperationException("a service did not start");
}
