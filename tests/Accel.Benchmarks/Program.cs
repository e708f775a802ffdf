// Accel benchmarks: plain TCP loopback, accelerated TCP and Unix domain sockets, side by side in one run,
// interleaved and repeated, reported as ratios. Needs root (like the tests: a private bpffs and cgroup).
//   dotnet run -c Release --project tests/Accel.Benchmarks -- --quick     a few minutes on 2 cores
//   dotnet run -c Release --project tests/Accel.Benchmarks                more repetitions and iterations
// Writes results/benchmarks.md and results/*.png at the repository root.
using Accel.Benchmarks;
using Accel.Testing;

bool quick = args.Contains("--quick");
string root = Repository.Root;
string outDir = Path.Combine(root, "results");
Directory.CreateDirectory(outDir);
var settings = new Settings(quick);

using var env = new KernelTestEnvironment();
var report = new Report(settings);
await RawSocketBenchmarks.RunAsync(env, settings, report);
await HttpBenchmarks.RunAsync(env, settings, report);
report.Write(outDir);
Console.WriteLine($"Wrote {Path.Combine(outDir, "benchmarks.md")}");
return 0;

