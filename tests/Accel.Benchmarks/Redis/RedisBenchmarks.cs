using System.Diagnostics;
using System.Globalization;
using Accel.Benchmarks.Http;
using Accel.Benchmarks.Paired;
using Accel.Testing;

namespace Accel.Benchmarks.Redis;

/// <summary>
/// A request/response case that is not HTTP: StackExchange.Redis GETs of a 1 KiB value against a Redis-protocol cache
/// hosted in Kestrel, between long-lived processes, modes switched slice by slice: no library at all (a client process
/// without it, the server app without it), the same with a second client process (A/A), accelerated (a client
/// process in process scope, the server app with the library), and to-plain (a client process in process scope calling
/// the server app without the library: a service in scope using a same-host cache that does not have it). CPU per GET
/// counts both processes.
/// </summary>
internal static class RedisBenchmarks
{
    public static readonly string[] Modes = ["none", "none-aa", "accel", "to-plain"];

    /// <summary>The columns of the table, against no library at all.</summary>
    public static readonly (string Mode, string Title)[] Columns =
        [("none-aa", "A/A"), ("accel", "accelerated / none"), ("to-plain", "in scope, to a cache without the library / none")];

    public static async Task<IReadOnlyList<Metric>> PairedAsync(KernelTestEnvironment env, Settings settings)
    {
        await using var server = await BenchServerProcess.StartAsync(env);
        var clients = new Dictionary<string, ClientProcess>
        {
            ["none"] = await ClientProcess.StartAsync(env, scoped: false, server.RespPorts["none"]),
            ["none-aa"] = await ClientProcess.StartAsync(env, scoped: false, server.RespPorts["none"]),
            ["accel"] = await ClientProcess.StartAsync(env, scoped: true, server.RespPorts["accel"]),
            ["to-plain"] = await ClientProcess.StartAsync(env, scoped: true, server.RespPorts["none"]),
        };
        try
        {
            var p50 = new Metric("redis-p50", "StackExchange.Redis GET 1 KiB, sequential p50", "us", HigherIsBetter: false);
            var rps = new Metric("redis-rps", "StackExchange.Redis GET 1 KiB, 64 in flight, GETs/s", "/s", HigherIsBetter: true);
            var cpu = new Metric("redis-cpu", "StackExchange.Redis GET, CPU time per GET (both processes)", "us", HigherIsBetter: false);
            int sequential = settings.RedisSequentialGets, parallel = settings.RedisParallelGets;
            var slice = new PairedCase("redis", [p50, rps, cpu], async mode =>
            {
                ClientProcess client = clients[mode];
                double median = double.Parse(await client.AskAsync($"seq {sequential}"), CultureInfo.InvariantCulture);
                ProcessCounters before = ProcessCounters.Read(server.Process.Id) + ProcessCounters.Read(client.Process.Id);
                double seconds = double.Parse(await client.AskAsync($"par {parallel}"), CultureInfo.InvariantCulture);
                ProcessCounters used = ProcessCounters.Read(server.Process.Id) + ProcessCounters.Read(client.Process.Id) - before;
                return new Dictionary<string, double> { [p50.Id] = median, [rps.Id] = parallel / seconds, [cpu.Id] = used.CpuNs / 1000.0 / parallel };
            });
            await PairedRunner.RunAsync("redis", Modes, settings.Rounds, [slice]);
            return slice.Metrics;
        }
        finally
        {
            foreach (ClientProcess c in clients.Values)
            {
                await c.DisposeAsync();
            }
        }
    }

    private sealed class ClientProcess(Process process) : IAsyncDisposable
    {
        public Process Process { get; } = process;

        public static async Task<ClientProcess> StartAsync(KernelTestEnvironment env, bool scoped, int port)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string arg in new[] { typeof(RedisClient).Assembly.Location, "redis-client", env.PinRoot, env.CgroupPath, scoped ? "scoped" : "plain", port.ToString(CultureInfo.InvariantCulture) })
            {
                psi.ArgumentList.Add(arg);
            }

            var process = Process.Start(psi)!;
            string? ready = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(1));
            if (ready != "READY")
            {
                throw new InvalidOperationException($"Redis client ({(scoped ? "scoped" : "plain")}): {ready} {await process.StandardError.ReadToEndAsync()}");
            }

            _ = process.StandardError.ReadToEndAsync();
            return new ClientProcess(process);
        }

        public async Task<string> AskAsync(string command)
        {
            await Process.StandardInput.WriteLineAsync(command);
            await Process.StandardInput.FlushAsync();
            return await Process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(1))
                ?? throw new InvalidOperationException($"the Redis client ended: exit {Process.ExitCode}");
        }

        public async ValueTask DisposeAsync()
        {
            Process.StandardInput.Close();
            if (!Process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                Process.Kill();
            }

            await Process.WaitForExitAsync();
            Process.Dispose();
        }
    }
}
