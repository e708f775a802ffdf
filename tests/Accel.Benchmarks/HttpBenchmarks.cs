using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Accel.Benchmarks;

/// <summary>HTTP/1.1 and h2c through Kestrel and an IHttpClientFactory client, in one process: sequential latency,
/// 64-way throughput and CPU time per request, over TCP (library present, Enabled = false: the same code path),
/// accelerated TCP, and a Unix domain socket.</summary>
internal static class HttpBenchmarks
{
    private static readonly byte[] Payload = new byte[256 * 1024];

    public static async Task RunAsync(KernelTestEnvironment env, Settings settings, Report report)
    {
        for (int rep = 0; rep < settings.Repetitions; rep++)
        {
            foreach (Transport t in RawSocketBenchmarks.Rotate(rep))
            {
                await using var server = await StartServerAsync(env, t);
                using var client = new ClientSide(env, t, server);
                foreach (string proto in new[] { "h1", "h2c" })
                {
                    HttpClient http = client.Http(proto);
                    foreach (int size in Settings.Sizes)
                    {
                        var (p50, p99) = await SequentialAsync(http, size, settings.HttpSequential(size));
                        report.Add($"{proto}-p50", $"{Name(proto)} {Report.Size(size)}, p50", "us", t, p50);
                        report.Add($"{proto}-p99", $"{Name(proto)} {Report.Size(size)}, p99", "us", t, p99);
                    }

                    var (rps, cpuUs) = await ThroughputAsync(http, 1024, 64, settings.HttpThroughputDuration);
                    report.Add($"{proto}-rps", $"{Name(proto)} 1 KiB, 64 concurrent, requests/s", "req/s", t, rps);
                    report.Add($"{proto}-cpu", $"{Name(proto)} 1 KiB, 64 concurrent, CPU per request", "us", t, cpuUs);
                }
            }

            Console.WriteLine($"http: repetition {rep + 1}/{settings.Repetitions} done");
        }
    }

    private static string Name(string proto) => proto == "h1" ? "HTTP/1.1" : "h2c";

    private static async Task<(double P50, double P99)> SequentialAsync(HttpClient http, int size, int n)
    {
        for (int i = 0; i < 100; i++)
        {
            await http.GetByteArrayAsync($"/data/{size}");
        }

        var samples = new double[n];
        for (int i = 0; i < n; i++)
        {
            long start = Stopwatch.GetTimestamp();
            byte[] body = await http.GetByteArrayAsync($"/data/{size}");
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            if (body.Length != size)
            {
                throw new InvalidOperationException($"got {body.Length} bytes, expected {size}");
            }
        }

        Array.Sort(samples);
        return (samples[n / 2], samples[n * 99 / 100]);
    }

    private static async Task<(double Rps, double CpuUsPerRequest)> ThroughputAsync(HttpClient http, int size, int concurrency, TimeSpan duration)
    {
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => http.GetByteArrayAsync($"/data/{size}")));
        long requests = 0;
        TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (clock.Elapsed < duration)
            {
                await http.GetByteArrayAsync($"/data/{size}");
                Interlocked.Increment(ref requests);
            }
        }));
        double seconds = clock.Elapsed.TotalSeconds;
        double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMicroseconds;
        return (requests / seconds, cpu / requests);
    }

    private static async Task<Server> StartServerAsync(KernelTestEnvironment env, Transport t)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        string? uds = t == Transport.Uds ? Path.Combine(Path.GetTempPath(), $"accel-bench-{Guid.NewGuid():N}") : null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (uds is null)
            {
                k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1);
                k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2);
            }
            else
            {
                k.ListenUnixSocket(uds + "-h1.sock", o => o.Protocols = HttpProtocols.Http1);
                k.ListenUnixSocket(uds + "-h2.sock", o => o.Protocols = HttpProtocols.Http2);
            }
        });
        builder.Services.AddSidecarlessAcceleration(o =>
        {
            env.Apply(o);
            o.Enabled = t == Transport.Accelerated;
        });
        var app = builder.Build();
        app.MapGet("/data/{n:int}", (int n) => Results.Bytes(Payload.AsMemory(0, n)));
        await app.StartAsync();
        string[] addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToArray();
        return uds is null
            ? new Server(app, new Uri(addresses[0]), new Uri(addresses[1]), null)
            : new Server(app, new Uri("http://localhost"), new Uri("http://localhost"), uds);
    }

    private sealed record Server(WebApplication App, Uri Http1, Uri Http2, string? UdsPrefix) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }

    private sealed class ClientSide : IDisposable
    {
        private readonly ServiceProvider _services;

        public ClientSide(KernelTestEnvironment env, Transport t, Server server)
        {
            var services = new ServiceCollection();
            services.AddLogging();
            services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
            services.AddSidecarlessAcceleration(o =>
            {
                env.Apply(o);
                o.Enabled = t == Transport.Accelerated;
            });
            foreach (var (name, uri, suffix) in new[] { ("h1", server.Http1, "-h1.sock"), ("h2c", server.Http2, "-h2.sock") })
            {
                var builder = services.AddHttpClient(name, c =>
                {
                    c.BaseAddress = uri;
                    if (name == "h2c")
                    {
                        c.DefaultRequestVersion = HttpVersion.Version20;
                        c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
                    }
                });
                builder.ConfigurePrimaryHttpMessageHandler((handler, _) =>
                {
                    var sockets = (SocketsHttpHandler)handler;
                    sockets.MaxConnectionsPerServer = 64;
                    if (server.UdsPrefix is { } prefix)
                    {
                        sockets.ConnectCallback = async (_, ct) =>
                        {
                            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                            await s.ConnectAsync(new UnixDomainSocketEndPoint(prefix + suffix), ct);
                            return new NetworkStream(s, ownsSocket: true);
                        };
                    }
                });
            }

            _services = services.BuildServiceProvider();
        }

        public HttpClient Http(string name) => _services.GetRequiredService<IHttpClientFactory>().CreateClient(name);

        public void Dispose() => _services.Dispose();
    }
}
