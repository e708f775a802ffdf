using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Accel.Demo;

/// <summary>The two services of the demo. Everything acceleration needs is the AddSidecarlessAcceleration line.</summary>
/// <remarks>For the demo's comparison each process also hosts a twin with acceleration turned off (<c>Off:Http1</c> and
/// <c>Off:H2c</c>): a second backend app, and a second set of the frontend's clients, each with
/// <c>SidecarlessAcceleration:Enabled = false</c>. The two modes then share the processes, their threads and their
/// places on the CPUs, and the frontend alternates between them call by call (<c>/compare</c>; why: see
/// <see cref="DemoRunner"/>).</remarks>
internal static class Services
{
    /// <summary>Serves /data/{n} (n bytes) over HTTP/1.1 and h2c, and /healthz; with <c>Off:Http1</c> and <c>Off:H2c</c>,
    /// its twin with acceleration off on those addresses too.</summary>
    public static async Task<int> RunBackendAsync(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Services.AddSidecarlessAcceleration();
        WebApplication app = MapBackend(builder.Build());
        if (builder.Configuration["Off:Http1"] is not { } offHttp1 || builder.Configuration["Off:H2c"] is not { } offH2c)
        {
            await app.RunAsync();
            return 0;
        }

        var twin = WebApplication.CreateSlimBuilder(args);
        twin.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["SidecarlessAcceleration:Enabled"] = "false",
            ["Kestrel:Endpoints:h1:Url"] = offHttp1,
            ["Kestrel:Endpoints:h1:Protocols"] = "Http1",
            ["Kestrel:Endpoints:h2c:Url"] = offH2c,
            ["Kestrel:Endpoints:h2c:Protocols"] = "Http2",
        });
        twin.Services.AddSidecarlessAcceleration();
        WebApplication off = MapBackend(twin.Build());
        await Task.WhenAll(app.RunAsync(), off.RunAsync()); // each disposes its app when it ends
        return 0;
    }

    private static readonly byte[] Payload = MakePayload();

    private static byte[] MakePayload()
    {
        byte[] payload = new byte[1 << 20];
        Random.Shared.NextBytes(payload);
        return payload;
    }

    private static WebApplication MapBackend(WebApplication app)
    {
        app.MapGet("/data/{n:int}", (int n) => Results.Bytes(Payload.AsMemory(0, Math.Clamp(n, 0, Payload.Length))));
        MapHealth(app);
        return app;
    }

    /// <summary>Calls the backend: /bench?proto=h1|h2c&amp;size=N&amp;n=M makes M sequential calls and reports latency.
    /// With <c>Off:Http1</c> and <c>Off:H2c</c> (the backend's twin with acceleration off), /compare makes M calls
    /// through each set of clients, taking turns call by call.</summary>
    public static async Task<int> RunFrontendAsync(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Services.AddSidecarlessAcceleration();
        AddBackendClients(builder.Services,
            builder.Configuration["Backend:Http1"] ?? throw new InvalidOperationException("Set Backend:Http1."),
            builder.Configuration["Backend:H2c"] ?? throw new InvalidOperationException("Set Backend:H2c."));
        var app = builder.Build();
        app.MapGet("/bench", async (string proto, int size, int n, IHttpClientFactory clients) =>
        {
            var latencies = new double[n];
            long bytes = 0;
            HttpClient client = clients.CreateClient(proto);
            for (int i = 0; i < n; i++)
            {
                (latencies[i], int got) = await CallAsync(client, size);
                bytes += got;
            }

            return Results.Json(Summarize(latencies, bytes));
        });
        MapHealth(app);
        await using ServiceProvider? off = builder.Configuration["Off:Http1"] is { } offHttp1 && builder.Configuration["Off:H2c"] is { } offH2c
            ? OffClients(offHttp1, offH2c)
            : null;
        if (off is not null)
        {
            MapCompare(app, off.GetRequiredService<IHttpClientFactory>());
        }

        await app.RunAsync();
        return 0;
    }

    private static void AddBackendClients(IServiceCollection services, string http1, string h2c)
    {
        services.AddHttpClient("h1", c => c.BaseAddress = new Uri(http1));
        services.AddHttpClient("h2c", c =>
        {
            c.BaseAddress = new Uri(h2c);
            c.DefaultRequestVersion = System.Net.HttpVersion.Version20;
            c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        });
    }

    /// <summary>The frontend's clients of the backend's twin: the same IHttpClientFactory clients from a container of
    /// their own, with the library's line and acceleration turned off.</summary>
    private static ServiceProvider OffClients(string http1, string h2c)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["SidecarlessAcceleration:Enabled"] = "false" })
            .Build());
        services.AddSidecarlessAcceleration();
        AddBackendClients(services, http1, h2c);
        return services.BuildServiceProvider();
    }

    /// <summary>/compare?proto=h1|h2c&amp;size=N&amp;n=M: M calls through the accelerated client and M through the one with
    /// acceleration off, taking turns call by call (which goes first alternating), so that whatever the machine does
    /// meanwhile weighs on both alike.</summary>
    private static void MapCompare(WebApplication app, IHttpClientFactory offClients) =>
        app.MapGet("/compare", async (string proto, int size, int n, IHttpClientFactory clients) =>
        {
            HttpClient on = clients.CreateClient(proto), off = offClients.CreateClient(proto);
            double[] onLatencies = new double[n], offLatencies = new double[n];
            long onBytes = 0, offBytes = 0;
            for (int i = 0; i < n; i++)
            {
                for (int turn = 0; turn < 2; turn++)
                {
                    if ((turn == 0) == (i % 2 == 0))
                    {
                        (onLatencies[i], int got) = await CallAsync(on, size);
                        onBytes += got;
                    }
                    else
                    {
                        (offLatencies[i], int got) = await CallAsync(off, size);
                        offBytes += got;
                    }
                }
            }

            return Results.Json(new Comparison(Summarize(onLatencies, onBytes), Summarize(offLatencies, offBytes)));
        });

    private static async Task<(double Us, int Bytes)> CallAsync(HttpClient client, int size)
    {
        long start = Stopwatch.GetTimestamp();
        byte[] body = await client.GetByteArrayAsync($"/data/{size}");
        return (Stopwatch.GetElapsedTime(start).TotalMicroseconds, body.Length);
    }

    private static BenchResult Summarize(double[] latencies, long bytes)
    {
        Array.Sort(latencies);
        int n = latencies.Length;
        return new BenchResult(n, bytes, latencies[n / 2], latencies[Math.Min(n - 1, n * 99 / 100)]);
    }

    /// <summary>/healthz as JSON with every entry's data: the bypass counts are in the acceleration entry.</summary>
    private static void MapHealth(WebApplication app) => app.MapHealthChecks("/healthz", new HealthCheckOptions
    {
        ResultStatusCodes = { [HealthStatus.Degraded] = StatusCodes.Status200OK },
        ResponseWriter = (context, report) =>
        {
            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync(JsonSerializer.Serialize(new
            {
                status = report.Status.ToString(),
                entries = report.Entries.ToDictionary(e => e.Key, e => new
                {
                    status = e.Value.Status.ToString(),
                    description = e.Value.Description,
                    data = e.Value.Data,
                }),
            }));
        },
    });
}

internal sealed record BenchResult(int Requests, long Bytes, double P50Us, double P99Us);

/// <summary>One round of /compare: the accelerated clients' calls and those with acceleration off.</summary>
internal sealed record Comparison(BenchResult On, BenchResult Off);
