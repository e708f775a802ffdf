using System.Diagnostics;
using Accel.Testing;

namespace Accel.Benchmarks.Http;

/// <summary>The benchmark's own executable in its "serve" role (<see cref="BenchServer"/>), started once per run.</summary>
internal sealed class BenchServerProcess : IAsyncDisposable
{
    private readonly string _udsPrefix;

    private BenchServerProcess(Process process, string udsPrefix, Dictionary<string, (string H1, string H2)> endpoints)
    {
        Process = process;
        _udsPrefix = udsPrefix;
        Endpoints = endpoints;
    }

    public Process Process { get; }

    /// <summary>Mode (none, off, accel, uds) to its HTTP/1.1 and h2c base URLs.</summary>
    public Dictionary<string, (string H1, string H2)> Endpoints { get; }

    /// <summary>Mode (none, off, accel) to the port of its Redis-protocol endpoint.</summary>
    public Dictionary<string, int> RespPorts { get; private init; } = new();

    public static async Task<BenchServerProcess> StartAsync(KernelTestEnvironment env)
    {
        // In the environment's scratch directory: a run stopped by a signal kills this process, which then cannot
        // remove its sockets, and the environment's cleanup removes the directory.
        string uds = Path.Combine(env.ScratchPath, "bench");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { typeof(BenchServer).Assembly.Location, "serve", env.PinRoot, env.CgroupPath, uds })
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi)!;
        string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(1));
        if (line is null || !line.StartsWith("READY ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"benchmark server: {line} {await process.StandardError.ReadToEndAsync()}");
        }

        var tokens = line["READY ".Length..].Split(' ').Select(p => p.Split('=')).ToList();
        var endpoints = tokens.Where(p => !p[0].StartsWith("resp-", StringComparison.Ordinal)).ToDictionary(p => p[0], p => (p[1].Split(',')[0], p[1].Split(',')[1]));
        var resp = tokens.Where(p => p[0].StartsWith("resp-", StringComparison.Ordinal)).ToDictionary(p => p[0]["resp-".Length..], p => int.Parse(p[1]));
        _ = process.StandardError.ReadToEndAsync(); // drained, so that the server never blocks on a full pipe
        return new BenchServerProcess(process, uds, endpoints) { RespPorts = resp };
    }

    public async ValueTask DisposeAsync()
    {
        Process.Kill();
        await Process.WaitForExitAsync();
        Process.Dispose();
        File.Delete(_udsPrefix + "-h1.sock");
        File.Delete(_udsPrefix + "-h2.sock");
    }
}
