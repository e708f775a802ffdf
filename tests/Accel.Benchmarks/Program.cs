// Accel benchmarks. HTTP and raw-socket round trips run in long-lived processes with the modes switched in short
// slices (no library, the same again as an A/A check, library off, accelerated, Unix domain socket) and are reported
// as medians of paired ratios with 95% intervals; bulk, namespace, memory and start-up figures follow. Needs root
// (like the tests: a private bpffs and cgroup).
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick     a few minutes on 2 cores
//   dotnet run -c Release --project tests/Accel.Benchmarks                more rounds, 1 GiB downloads
// Writes results/benchmarks.md and results/ratios.png at the repository root.
using System.Diagnostics;
using Accel;
using Accel.Benchmarks;
using Accel.Benchmarks.Http;
using Accel.Testing;

if (args.Length == 4 && args[0] == "serve")
{
    return await BenchServer.RunAsync(args[1], args[2], args[3]);
}

bool quick = args.Contains("--quick");
string outDir = Path.Combine(Repository.Root, "results");
Directory.CreateDirectory(outDir);
var settings = new Settings(quick);

using var env = new KernelTestEnvironment();
var report = new Report(settings);
var startClock = Stopwatch.StartNew();
using var engine = AccelerationEngine.Start(env.Options());
report.Add("startup", "engine start, creating the pinned objects", "ms", Transport.Accelerated, startClock.Elapsed.TotalMilliseconds);
if (!engine.IsEnabled)
{
    throw new InvalidOperationException($"Acceleration is not available: {engine.Status.Message}");
}

var raw = await RawSocketBenchmarks.PairedRoundTripsAsync(engine, settings);
var http = await PairedHttpBenchmarks.RunAsync(env, settings, engine);
await RawSocketBenchmarks.RunAsync(env, settings, report, engine);
report.Write(outDir, raw, http);
Console.WriteLine($"Wrote {Path.Combine(outDir, "benchmarks.md")} and ratios.png");
return 0;
