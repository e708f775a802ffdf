using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Accel.Demo;

/// <summary>Starts backend and frontend as separate processes, once with acceleration and once without,
/// drives traffic through the frontend, and prints what each run bypassed.</summary>
internal static class DemoRunner
{
    private static readonly (string Proto, int Size, int Requests)[] Cases = [("h1", 64, 3000), ("h1", 1024, 3000), ("h1", 16384, 2000), ("h2c", 1024, 3000)];

    public static async Task<int> RunAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        var rows = new List<string[]>();
        var notes = new List<string>();
        foreach (bool accelerated in new[] { true, false })
        {
            int h1 = FreePort(), h2 = FreePort(), front = FreePort();
            string mode = accelerated ? "on" : "off";
            string[] env = [$"SidecarlessAcceleration__Enabled={accelerated}"];
            using var backend = Start("backend", env,
                "--Kestrel:Endpoints:h2c:Url", $"http://127.0.0.1:{h2}", "--Kestrel:Endpoints:h2c:Protocols", "Http2",
                "--Kestrel:Endpoints:h1:Url", $"http://127.0.0.1:{h1}", "--Kestrel:Endpoints:h1:Protocols", "Http1");
            using var frontend = Start("frontend", env, "--urls", $"http://127.0.0.1:{front}",
                "--Backend:Http1", $"http://127.0.0.1:{h1}", "--Backend:H2c", $"http://127.0.0.1:{h2}");
            try
            {
                var backendHealth = await WaitHealthyAsync(http, $"http://127.0.0.1:{h1}/healthz", backend);
                await WaitHealthyAsync(http, $"http://127.0.0.1:{front}/healthz", frontend);
                if (accelerated && !backendHealth.Enabled)
                {
                    notes.Add($"Acceleration is not running here: {backendHealth.Reason}");
                }

                foreach (var (proto, size, requests) in Cases)
                {
                    // Warm up (JIT, connection pool) so that both runs measure the same steady state.
                    await http.GetStringAsync($"http://127.0.0.1:{front}/bench?proto={proto}&size={size}&n={requests / 3}");
                    Health before = await HealthAsync(http, $"http://127.0.0.1:{h1}/healthz");
                    string json = await http.GetStringAsync($"http://127.0.0.1:{front}/bench?proto={proto}&size={size}&n={requests}");
                    var bench = JsonSerializer.Deserialize<BenchResult>(json, JsonSerializerOptions.Web)!;
                    Health after = await HealthAsync(http, $"http://127.0.0.1:{h1}/healthz");
                    rows.Add([mode, proto == "h1" ? "HTTP/1.1" : "h2c", Size(size), bench.Requests.ToString(),
                        $"{bench.P50Us:F0}", $"{bench.P99Us:F0}",
                        Size(after.RedirectedBytes - before.RedirectedBytes), Size(after.TcpBytes - before.TcpBytes)]);
                }
            }
            finally
            {
                Stop(backend);
                Stop(frontend);
            }
        }

        Console.WriteLine();
        Console.WriteLine("Frontend -> backend over loopback, sequential requests through IHttpClientFactory.");
        Console.WriteLine("Bytes: what the backend sent in responses, redirected socket to socket or through TCP (from its /healthz).");
        Console.WriteLine();
        Print(["accel", "protocol", "body", "requests", "p50 us", "p99 us", "redirected", "via TCP"], rows);
        foreach (string note in notes)
        {
            Console.WriteLine();
            Console.WriteLine(note);
        }

        return 0;
    }

    private static Process Start(string role, string[] env, params string[] args)
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
        p.OutputDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) Console.WriteLine($"[{role}] {line.Trim()}"); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) Console.Error.WriteLine($"[{role}] {line.Trim()}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>Stops a service the way a container engine does: SIGTERM (the host shuts down and the library
    /// removes the service's record), then SIGKILL if it has not ended within 10 s.</summary>
    private static void Stop(Process p)
    {
        if (p.HasExited)
        {
            return;
        }

        using (var term = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            term.WaitForExit();
        }

        if (!p.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
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
