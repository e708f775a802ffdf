using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Accel.Examples;

namespace Accel.Demo;

/// <summary>Starts two backend and frontend pairs as separate processes, one with acceleration and one without, drives
/// the same requests through both frontends in alternating slices, and prints what each bypassed.</summary>
/// <remarks>Both pairs run at once and take turns, a slice of sequential requests each (on, off, off, on, ...).
/// Measured one after the other, whatever the machine did meanwhile weighs on one mode only, which on a small VM is
/// more than the difference being shown. Slices of a few hundred requests were still too short to tell (runs of this
/// demo read 0.68 to 1.02 for the same case), and so was taking turns request by request (each request then woke a
/// pair of processes that had gone idle).</remarks>
internal static class DemoRunner
{
    /// <summary>Per case the requests of one slice (about 0.1 to 0.2 s here).</summary>
    private static readonly (string Proto, int Size, int Slice)[] Cases = [("h1", 64, 2000), ("h1", 1024, 2000), ("h1", 16384, 1000), ("h2c", 1024, 2000)];

    /// <summary>Slices per mode and case.</summary>
    private const int Rounds = 10;

    public static async Task<int> RunAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        var pairs = new List<Pair>();
        var notes = new List<string>();
        try
        {
            foreach (bool accelerated in new[] { true, false })
            {
                pairs.Add(StartPair(accelerated));
            }

            foreach (Pair pair in pairs)
            {
                Health health = await WaitHealthyAsync(http, pair.BackendHealth, pair.Backend);
                await WaitHealthyAsync(http, $"{pair.Frontend}/healthz", pair.FrontendProcess);
                if (pair.Accelerated && !health.Enabled)
                {
                    notes.Add($"Acceleration is not running here: {health.Reason}");
                }
            }

            var rows = new List<string[]>();
            foreach (var (proto, size, slice) in Cases)
            {
                foreach (Pair pair in pairs)
                {
                    // Warm up (JIT, connection pool) so that both measure the same steady state.
                    await BenchAsync(http, pair, proto, size, slice);
                }

                var before = new Dictionary<Pair, Health>();
                foreach (Pair pair in pairs)
                {
                    before[pair] = await HealthAsync(http, pair.BackendHealth);
                }

                var slices = pairs.ToDictionary(p => p, _ => new List<BenchResult>());
                var ratios = new List<double>();
                for (int round = 0; round < Rounds; round++)
                {
                    foreach (Pair pair in round % 2 == 0 ? pairs : Enumerable.Reverse(pairs))
                    {
                        slices[pair].Add(await BenchAsync(http, pair, proto, size, slice));
                    }

                    ratios.Add(slices[pairs[0]][^1].P50Us / slices[pairs[1]][^1].P50Us);
                }

                foreach (Pair pair in pairs)
                {
                    Health after = await HealthAsync(http, pair.BackendHealth);
                    rows.Add([pair.Mode, proto == "h1" ? "HTTP/1.1" : "h2c", Size(size), (slice * Rounds).ToString(),
                        $"{Median(slices[pair].Select(r => r.P50Us)):F0}", $"{Median(slices[pair].Select(r => r.P99Us)):F0}",
                        pair.Accelerated ? $"{Median(ratios):F2}" : "",
                        Size(after.RedirectedBytes - before[pair].RedirectedBytes), Size(after.TcpBytes - before[pair].TcpBytes)]);
                }
            }

            Console.WriteLine();
            Console.WriteLine("Frontend -> backend over loopback, sequential requests through IHttpClientFactory, the pair of services with");
            Console.WriteLine($"acceleration and the pair without it taking turns in {Rounds} slices each. p50 and p99: the median of the slices'");
            Console.WriteLine("own. on / off: the median of the slices' paired p50 ratios (below 1.00 is faster; one run on this machine, not a");
            Console.WriteLine("benchmark: the README's Benchmarks measure with intervals).");
            Console.WriteLine("Bytes: what the backend sent in responses, redirected socket to socket or through TCP (from its /healthz).");
            Console.WriteLine();
            Print(["accel", "protocol", "body", "requests", "p50 us", "p99 us", "on / off", "redirected", "via TCP"], rows);
            foreach (string note in notes)
            {
                Console.WriteLine();
                Console.WriteLine(note);
            }

            return 0;
        }
        finally
        {
            foreach (Pair pair in pairs)
            {
                ServiceProcess.Stop(pair.Backend);
                ServiceProcess.Stop(pair.FrontendProcess);
                pair.Backend.Dispose();
                pair.FrontendProcess.Dispose();
            }
        }
    }

    private static Pair StartPair(bool accelerated)
    {
        int h1 = FreePort(), h2 = FreePort(), front = FreePort();
        string[] env = [$"SidecarlessAcceleration__Enabled={accelerated}"];
        Process backend = Start("backend", accelerated ? "backend" : "backend, off", env,
            "--Kestrel:Endpoints:h2c:Url", $"http://127.0.0.1:{h2}", "--Kestrel:Endpoints:h2c:Protocols", "Http2",
            "--Kestrel:Endpoints:h1:Url", $"http://127.0.0.1:{h1}", "--Kestrel:Endpoints:h1:Protocols", "Http1");
        Process frontend;
        try
        {
            frontend = Start("frontend", accelerated ? "frontend" : "frontend, off", env, "--urls", $"http://127.0.0.1:{front}",
                "--Backend:Http1", $"http://127.0.0.1:{h1}", "--Backend:H2c", $"http://127.0.0.1:{h2}");
        }
        catch
        {
            ServiceProcess.Stop(backend);
            backend.Dispose();
            throw;
        }

        return new Pair(accelerated, backend, frontend, $"http://127.0.0.1:{h1}/healthz", $"http://127.0.0.1:{front}");
    }

    private static async Task<BenchResult> BenchAsync(HttpClient http, Pair pair, string proto, int size, int requests)
        => JsonSerializer.Deserialize<BenchResult>(
            await http.GetStringAsync($"{pair.Frontend}/bench?proto={proto}&size={size}&n={requests}"), JsonSerializerOptions.Web)!;

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Starts this program again as the service <paramref name="role"/> (backend or frontend), its output
    /// prefixed with <paramref name="label"/>.</summary>
    private static Process Start(string role, string label, string[] env, params string[] args)
    {
        string self = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(DemoRunner).Assembly.Location);
        }

        psi.ArgumentList.Add(role);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (string e in env)
        {
            psi.Environment[e[..e.IndexOf('=')]] = e[(e.IndexOf('=') + 1)..];
        }

        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        psi.Environment["Logging__LogLevel__Accel"] = "Information";
        psi.Environment["Logging__LogLevel__Microsoft.Extensions.Diagnostics.HealthChecks"] = "Error";
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) Console.WriteLine($"[{label}] {line.Trim()}"); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) Console.Error.WriteLine($"[{label}] {line.Trim()}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static async Task<Health> WaitHealthyAsync(HttpClient http, string url, Process process)
    {
        for (int i = 0; i < 200; i++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"A demo service exited with code {process.ExitCode}; see its output above.");
            }

            try
            {
                return await HealthAsync(http, url);
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
        }

        throw new TimeoutException($"{url} did not answer within 20 s.");
    }

    private static async Task<Health> HealthAsync(HttpClient http, string url)
    {
        using var doc = JsonDocument.Parse(await http.GetStringAsync(url));
        JsonElement data = doc.RootElement.GetProperty("entries").GetProperty("sidecarless-acceleration").GetProperty("data");
        return new Health(
            data.GetProperty("enabled").GetBoolean(),
            data.GetProperty("reason").ValueKind == JsonValueKind.String ? data.GetProperty("reason").GetString() : null,
            data.GetProperty("redirectedBytes").GetInt64(),
            data.GetProperty("tcpBytes").GetInt64());
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 10L << 20 => $"{bytes >> 20} MiB",
        >= 10L << 10 => $"{bytes >> 10} KiB",
        _ => $"{bytes} B",
    };

    private static void Print(string[] header, List<string[]> rows)
    {
        int[] widths = header.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        string Line(string[] cells) => "| " + string.Join(" | ", cells.Select((c, i) => i < 2 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))) + " |";
        Console.WriteLine(Line(header));
        Console.WriteLine("|" + string.Join("|", widths.Select((w, i) => i < 2 ? new string('-', w + 2) : new string('-', w + 1) + ":")) + "|");
        foreach (string[] r in rows)
        {
            Console.WriteLine(Line(r));
        }
    }

    private sealed record Health(bool Enabled, string? Reason, long RedirectedBytes, long TcpBytes);

    /// <summary>One backend and its frontend, both with acceleration on or both with it off.</summary>
    private sealed record Pair(bool Accelerated, Process Backend, Process FrontendProcess, string BackendHealth, string Frontend)
    {
        public string Mode => Accelerated ? "on" : "off";
    }
}
