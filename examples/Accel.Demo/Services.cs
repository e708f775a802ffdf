using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Accel.Demo;

/// <summary>The two services of the demo. Everything acceleration needs is the AddSidecarlessAcceleration line.</summary>
internal static class Services
{
    /// <summary>Serves /data/{n} (n bytes) over HTTP/1.1 and h2c, and /healthz.</summary>
    public static async Task<int> RunBackendAsync(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Services.AddSidecarlessAcceleration();
        var app = builder.Build();
        byte[] payload = new byte[1 << 20];
        Random.Shared.NextBytes(payload);
        app.MapGet("/data/{n:int}", (int n) => Results.Bytes(payload.AsMemory(0, Math.Clamp(n, 0, payload.Length))));
        MapHealth(app);
        await app.RunAsync();
        return 0;
    }

    /// <summary>Calls the backend: /bench?proto=h1|h2c&amp;size=N&amp;n=M makes M sequential calls and reports latency.</summary>
    public static async Task<int> RunFrontendAsync(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Services.AddSidecarlessAcceleration();
        string backendH1 = builder.Configuration["Backend:Http1"] ?? throw new InvalidOperationException("Set Backend:Http1.");
        string backendH2 = builder.Configuration["Backend:H2c"] ?? throw new InvalidOperationException("Set Backend:H2c.");
        builder.Services.AddHttpClient("h1", c => c.BaseAddress = new Uri(backendH1));
        builder.Services.AddHttpClient("h2c", c =>
        {
            c.BaseAddress = new Uri(backendH2);
            c.DefaultRequestVersion = System.Net.HttpVersion.Version20;
            c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        });
        var app = builder.Build();
        app.MapGet("/bench", async (string proto, int size, int n, IHttpClientFactory clients) =>
        {
            HttpClient client = clients.CreateClient(proto);
            var latencies = new double[n];
            long bytes = 0;
            for (int i = 0; i < n; i++)
            {
                long start = Stopwatch.GetTimestamp();
                byte[] body = await client.GetByteArrayAsync($"/data/{size}");
                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                bytes += body.Length;
            }

            Array.Sort(latencies);
            return Results.Json(new BenchResult(n, bytes, latencies[n / 2], latencies[Math.Min(n - 1, n * 99 / 100)]));
        });
        MapHealth(app);
        await app.RunAsync();
        return 0;
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
