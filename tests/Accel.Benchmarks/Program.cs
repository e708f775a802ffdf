// Accel benchmarks. HTTP and raw-socket round trips run in long-lived processes with the modes switched in short
// slices, or interleaved request by request for sequential latency (no library, the same again as an A/A check,
// library off, accelerated, a client without the library calling the accelerated server and the reverse, Unix domain
// socket, and a one-lookup sk_msg redirect without the library that measures the ceiling) and are reported as medians of paired ratios with 95% intervals; bulk, namespace, memory and start-up figures
// follow. Needs root (like the tests: a private bpffs and cgroup).
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick     what the target check needs, about 5 minutes on 2 cores
//   dotnet run -c Release --project tests/Accel.Benchmarks                every case and mode, about 23 minutes
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --redis-only   the Redis-protocol case alone, printed
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --tracker-only the read tracker's cost alone, printed
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --profile-only the CPU split of the HTTP load alone, printed
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --program-only the sk_msg program's ns per message alone,
//                                                                                    raw and under HTTP load (1 minute)
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --concurrent-only the 64-way cases alone, against no
//                                                                                    library and the ceiling (3 minutes)
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --large-only   the large downloads and uploads alone
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --factory-only the 64-way cases with and without
//                                                                                    IHttpClientFactory's logging handlers
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --services-only the YARP gateway and gRPC cases alone
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --latency-only the sequential HTTP cases alone (2 minutes)
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --connect-only  sequential requests, each on a new
//                                                                                    connection, every mode
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --syscalls-only which syscalls each mode makes per request
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --bulk-only    raw bulk throughput, and where its bytes went
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick --raw-only     the raw round trips alone, with the kernel's floor
// ACCEL_BENCH_ROUNDS=<n> runs n paired rounds instead of 16 (at least 6), for a focused run that must resolve a smaller
// difference. Writes results/quick.md (--quick), or results/benchmarks.md and results/ratios.png, at the repository root.
using System.Diagnostics;
using System.Runtime.InteropServices;
using Accel;
using Accel.Benchmarks;
using Accel.Benchmarks.Http;
using Accel.Testing;

if (args.Length == 4 && args[0] == "serve")
{
    return await BenchServer.RunAsync(args[1], args[2], args[3]);
}

if (args.Length == 5 && args[0] == "redis-client")
{
    return await Accel.Benchmarks.Redis.RedisClient.RunAsync(args[1], args[2], args[3] == "scoped", int.Parse(args[4]));
}

bool quick = args.Contains("--quick");
string outDir = Path.Combine(Repository.Root, "results");
Directory.CreateDirectory(outDir);
var settings = new Settings(quick);

using var env = new KernelTestEnvironment();
// Stopped with Ctrl+C or SIGTERM: the environment's cleanup still runs (it kills the server process left in the
// cgroup, removes the cgroup and unmounts the private bpffs) before the default action ends the process, which
// happens as soon as the handler returns: so the handler returns only once the cleanup is done, whoever started it
// (KernelTestEnvironment.Dispose runs once, and a second caller waits for the first).
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => env.Dispose());
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => env.Dispose());
// Ended by an exception nothing catches: the runtime then ends the process without running finally blocks (the usings
// here), which left the cgroup, the private bpffs and the server's sockets behind; the cleanup runs from here instead.
AppDomain.CurrentDomain.UnhandledException += (_, _) => env.Dispose();
var report = new Report(settings);
var startClock = Stopwatch.StartNew();
using var engine = AccelerationEngine.Start(env.Options());
report.Add("startup", "engine start, creating the pinned objects", "ms", Transport.Accelerated, startClock.Elapsed.TotalMilliseconds);
if (!engine.IsEnabled)
{
    throw new InvalidOperationException($"Acceleration is not available: {engine.Status.Message}");
}

if (args.Contains("--redis-only"))
{
    // One case alone, printed and not written (for working on it).
    var alone = await Accel.Benchmarks.Redis.RedisBenchmarks.PairedAsync(env, settings);
    var table = new System.Text.StringBuilder();
    Accel.Benchmarks.Paired.PairedReport.WriteTable(table, alone, "none", Accel.Benchmarks.Redis.RedisBenchmarks.Columns);
    Console.WriteLine(table);
    return 0;
}

if (args.Contains("--program-only"))
{
    for (int i = 0; i < 3; i++)
    {
        var (ns, messages) = RawSocketBenchmarks.ProgramCost(engine, 100_000);
        var (floor, redirect) = ProgramFloor.Measure(engine, 100_000);
        Console.WriteLine($"sk_msg program: {ns:0} ns per message over {messages} messages (raw 64 B round trips); a program that returns at once: {floor:0} ns; a one-lookup redirect: {redirect:0} ns");
    }

    Console.WriteLine(await PairedHttpBenchmarks.ProgramUnderLoadAsync(env, engine));

    return 0;
}

// The other single-part flags: that part alone, printed and not written.
var parts = new (string Flag, Func<Task<string>> Run)[]
{
    ("--profile-only", () => PairedHttpBenchmarks.ProfileOnlyAsync(env)),
    ("--factory-only", () => PairedHttpBenchmarks.FactoryOnlyAsync(env, settings)),
    ("--concurrent-only", () => PairedHttpBenchmarks.ConcurrentOnlyAsync(env, settings)),
    ("--services-only", () => PairedHttpBenchmarks.ServicesOnlyAsync(env, settings)),
    ("--large-only", () => PairedHttpBenchmarks.LargeOnlyAsync(env, settings)),
    ("--latency-only", () => PairedHttpBenchmarks.LatencyOnlyAsync(env, settings)),
    ("--connect-only", () => PairedHttpBenchmarks.ConnectOnlyAsync(env, settings)),
    ("--syscalls-only", () => PairedHttpBenchmarks.SyscallsOnlyAsync(env)),
    ("--bulk-only", () => Task.FromResult(RawSocketBenchmarks.BulkOnly(engine, settings))),
    ("--raw-only", async () =>
    {
        var table = new System.Text.StringBuilder();
        Accel.Benchmarks.Paired.PairedReport.WriteTable(table, await RawSocketBenchmarks.PairedRoundTripsAsync(engine, settings), "tcp", RawSocketBenchmarks.Columns);
        return table.ToString();
    }),
    ("--tracker-only", async () => (await TrackerCost.MeasureAsync(env)).ToString()),
};
if (parts.FirstOrDefault(p => args.Contains(p.Flag)) is { Run: { } part })
{
    Console.WriteLine(await part());
    foreach (string line in Accel.Benchmarks.Paired.PairedRunner.Repeated)
    {
        Console.WriteLine($"Measured again: {line}");
    }

    return 0;
}

var raw = await RawSocketBenchmarks.PairedRoundTripsAsync(engine, settings);
var http = await PairedHttpBenchmarks.RunAsync(env, settings, engine);
if (quick)
{
    report.WriteQuick(outDir, raw, http);
    Console.WriteLine($"Wrote {Path.Combine(outDir, "quick.md")} in {startClock.Elapsed.TotalMinutes:0.0} minutes");
    return 0;
}

var redis = await Accel.Benchmarks.Redis.RedisBenchmarks.PairedAsync(env, settings);
await RawSocketBenchmarks.RunAsync(env, settings, report, engine);
var tracker = await TrackerCost.MeasureAsync(env); // last: while it runs, every socket this process creates is in scope
report.Write(outDir, raw, http, redis, tracker);
Console.WriteLine($"Wrote {Path.Combine(outDir, "benchmarks.md")} and ratios.png in {startClock.Elapsed.TotalMinutes:0.0} minutes");
return 0;
