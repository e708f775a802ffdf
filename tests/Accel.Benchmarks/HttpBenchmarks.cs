using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Accel.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Accel.Benchmarks;

/// <summary>HTTP/1.1 and h2c from an IHttpClientFactory client (this process) to a Kestrel service (its own
/// process): sequential latency, 64-way throughput and CPU time per request (both processes), over TCP (library
/// present, Enabled = false: the same code path), accelerated TCP, and a Unix domain socket.</summary>
internal static class HttpBenchmarks
{
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

                    var (rps, cpuUs) = await ThroughputAsync(http, server.Process, 1024, 64, settings.HttpThroughputDuration);
                    report.Add($"{proto}-rps", $"{Name(proto)} 1 KiB, 64 concurrent, requests/s", "req/s", t, rps);
                    report.Add($"{proto}-cpu", $"{Name(proto)} 1 KiB, 64 concurrent, CPU per request", "us", t, cpuUs);
                }

                // Evidence that the accelerated runs were accelerated: the server's own counters.
                using var doc = System.Text.Json.JsonDocument.Parse(await client.Http("h1").GetStringAsync("/healthz"));
                var data = doc.RootElement.GetProperty("entries").GetProperty("sidecarless-acceleration").GetProperty("data");
                double redirected = data.GetProperty("redirectedBytes").GetInt64(), tcp = data.GetProperty("tcpBytes").GetInt64();
                report.Add("check", "server responses redirected, share of bytes sent by registered sockets", "%", t, redirected + tcp == 0 ? 0 : 100 * redirected / (redirected + tcp));
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

    /// <summary>Requests/s and CPU time per request of client and server process together.</summary>
    private static async Task<(double Rps, double CpuUsPerRequest)> ThroughputAsync(HttpClient http, Process server, int size, int concurrency, TimeSpan duration)
    {
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => http.GetByteArrayAsync($"/data/{size}")));
        long requests = 0;
        TimeSpan Cpu()
        {
            server.Refresh();
            return Process.GetCurrentProcess().TotalProcessorTime + server.TotalProcessorTime;
        }

        TimeSpan cpuBefore = Cpu();
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
        double cpu = (Cpu() - cpuBefore).TotalMicroseconds;
        return (requests / seconds, cpu / requests);
    }

    /// <summary>The demo's backend service as a separate process, as a deployment runs it.</summary>
    private static async Task<Server> StartServerAsync(KernelTestEnvironment env, Transport t)
    {
        string? uds = t == Transport.Uds ? Path.Combine(Path.GetTempPath(), $"accel-bench-{Guid.NewGuid():N}") : null;
        int h1 = LoopbackPort.Free(), h2 = LoopbackPort.Free();
        string h1Url = uds is null ? $"http://127.0.0.1:{h1}" : $"http://unix:{uds}-h1.sock";
        string h2Url = uds is null ? $"http://127.0.0.1:{h2}" : $"http://unix:{uds}-h2.sock";
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "Accel.Demo.dll"), "backend",
            "--Kestrel:Endpoints:h1:Url", h1Url, "--Kestrel:Endpoints:h1:Protocols", "Http1",
            "--Kestrel:Endpoints:h2c:Url", h2Url, "--Kestrel:Endpoints:h2c:Protocols", "Http2",
            "--SidecarlessAcceleration:Enabled", (t == Transport.Accelerated).ToString(),
            "--SidecarlessAcceleration:PinRoot", env.PinRoot,
            "--SidecarlessAcceleration:CgroupPath", env.CgroupPath,
            "--SidecarlessAcceleration:MountBpffsIfMissing", "false",
            "--Logging:LogLevel:Default", "Warning",
        })
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new Server(process, new Uri(uds is null ? h1Url : "http://localhost"), new Uri(uds is null ? h2Url : "http://localhost"), uds);
        using var probe = new HttpClient(server.UdsPrefix is null ? new SocketsHttpHandler() : new SocketsHttpHandler { ConnectCallback = Uds(server.UdsPrefix + "-h1.sock") });
        for (int i = 0; ; i++)
        {
            try
            {
                await probe.GetStringAsync(new Uri(server.Http1, "/healthz"));
                return server;
            }
            catch (HttpRequestException) when (i < 300 && !process.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }

    private static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> Uds(string path) => async (_, ct) =>
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
        return new NetworkStream(s, ownsSocket: true);
    };

    private sealed record Server(Process Process, Uri Http1, Uri Http2, string? UdsPrefix) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            Process.Kill();
            Process.WaitForExit();
            Process.Dispose();
            if (UdsPrefix is not null)
            {
                File.Delete(UdsPrefix + "-h1.sock");
                File.Delete(UdsPrefix + "-h2.sock");
            }

            return ValueTask.CompletedTask;
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
                        sockets.ConnectCallback = Uds(prefix + suffix);
                    }
                });
            }

            _services = services.BuildServiceProvider();
        }

        public HttpClient Http(string name) => _services.GetRequiredService<IHttpClientFactory>().CreateClient(name);

        public void Dispose() => _services.Dispose();
    }
}
