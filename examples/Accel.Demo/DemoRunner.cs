using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Accel.Examples;

namespace Accel.Demo;

/// <summary>Starts a backend and a frontend as separate processes, each with acceleration on and a twin with it off,
/// drives the same sequential calls through both modes, taking turns call by call, and prints what each bypassed.</summary>
/// <remarks>Each process hosts both modes (<see cref="Services"/>), so that they share its threads and its place on the
/// CPUs. Run as two pairs of processes, one per mode, taking turns in slices of a few thousand calls, the same case read
/// anywhere from 0.76 to 1.42 (on / off) from one run to the next on a 2-CPU machine: where the scheduler put each
/// pair's processes weighed more than the fast path, and it held for whole slices.</remarks>
internal static class DemoRunner
{
    /// <summary>Per case the calls of one round in each mode (about 0.2 to 0.4 s a round here).</summary>
    private static readonly (string Proto, int Size, int Calls)[] Cases = [("h1", 64, 2000), ("h1", 1024, 2000), ("h1", 16384, 1000), ("h2c", 1024, 2000)];

    /// <summary>Rounds per case.</summary>
    private const int Rounds = 10;

    public static async Task<int> RunAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        var notes = new List<string>();
        int h1 = FreePort(), h2 = FreePort(), offH1 = FreePort(), offH2 = FreePort(), front = FreePort();
        string frontend = $"http://127.0.0.1:{front}";
        var health = new Dictionary<string, string> { ["on"] = $"http://127.0.0.1:{h1}/healthz", ["off"] = $"http://127.0.0.1:{offH1}/healthz" };
        Process? backendProcess = null, frontendProcess = null;
        try
        {
            backendProcess = Start("backend", "backend",
                "--Kestrel:Endpoints:h2c:Url", $"http://127.0.0.1:{h2}", "--Kestrel:Endpoints:h2c:Protocols", "Http2",
                "--Kestrel:Endpoints:h1:Url", $"http://127.0.0.1:{h1}", "--Kestrel:Endpoints:h1:Protocols", "Http1",
                "--Off:Http1", $"http://127.0.0.1:{offH1}", "--Off:H2c", $"http://127.0.0.1:{offH2}");
            frontendProcess = Start("frontend", "frontend", "--urls", frontend,
                "--Backend:Http1", $"http://127.0.0.1:{h1}", "--Backend:H2c", $"http://127.0.0.1:{h2}",
                "--Off:Http1", $"http://127.0.0.1:{offH1}", "--Off:H2c", $"http://127.0.0.1:{offH2}");
            Health on = await WaitHealthyAsync(http, health["on"], backendProcess);
            await WaitHealthyAsync(http, health["off"], backendProcess);
            await WaitHealthyAsync(http, $"{frontend}/healthz", frontendProcess);
            if (!on.Enabled)
            {
                notes.Add($"Acceleration is not running here: {on.Reason}");
            }

            var rows = new List<string[]>();
            foreach (var (proto, size, calls) in Cases)
            {
                // Warm up (JIT, connection pools) so that both modes measure the same steady state.
                await CompareAsync(http, frontend, proto, size, calls);
                var before = new Dictionary<string, Health>();
                foreach (string mode in health.Keys)
                {
                    before[mode] = await HealthAsync(http, health[mode]);
                }

                var rounds = new List<Comparison>();
                for (int round = 0; round < Rounds; round++)
                {
                    rounds.Add(await CompareAsync(http, frontend, proto, size, calls));
                }

                foreach (string mode in health.Keys)
                {
                    Health after = await HealthAsync(http, health[mode]);
                    IEnumerable<BenchResult> results = rounds.Select(r => mode == "on" ? r.On : r.Off);
                    rows.Add([mode, proto == "h1" ? "HTTP/1.1" : "h2c", Size(size), (calls * Rounds).ToString(),
                        $"{Median(results.Select(r => r.P50Us)):F0}", $"{Median(results.Select(r => r.P99Us)):F0}",
                        mode == "on" ? $"{Median(rounds.Select(r => r.On.P50Us / r.Off.P50Us)):F2}" : "",
                        Size(after.RedirectedBytes - before[mode].RedirectedBytes), Size(after.TcpBytes - before[mode].TcpBytes)]);
                }
            }

            Console.WriteLine();
            Console.WriteLine("Frontend -> backend over loopback, sequential calls through IHttpClientFactory clients, with acceleration on");
            Console.WriteLine($"and with it off (each process hosts both), taking turns call by call in {Rounds} rounds. p50 and p99: the median of");
            Console.WriteLine("the rounds' own. on / off: the median of the rounds' p50 ratios (below 1.00 is faster; one run on this machine,");
            Console.WriteLine("not a benchmark: the README's Benchmarks measure with intervals).");
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
            foreach (Process? p in new[] { frontendProcess, backendProcess })
            {
                if (p is not null)
                {
                    ServiceProcess.Stop(p);
                    p.Dispose();
                }
            }
        }
    }

    private static async Task<Comparison> CompareAsync(HttpClient http, string frontend, string proto, int size, int calls)
        => JsonSerializer.Deserialize<Comparison>(
            await http.GetStringAsync($"{frontend}/compare?proto={proto}&size={size}&n={calls}"), JsonSerializerOptions.Web)!;

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Starts this program again as the service <paramref name="role"/> (backend or frontend), its output
    /// prefixed with <paramref name="label"/>.</summary>
    private static Process Start(string role, string label, params string[] args)
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
}
