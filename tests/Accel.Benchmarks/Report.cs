using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Accel.Benchmarks.Http;
using Accel.Benchmarks.Paired;
using Accel.Benchmarks.Redis;

namespace Accel.Benchmarks;

/// <summary>Collects one value per repetition for every (case, transport) and writes the medians, their spread
/// and the ratios as Markdown, plus PNG plots.</summary>
internal sealed class Report(Settings settings)
{
    private readonly List<(string Group, string Case, string Unit, Transport Transport, double Value)> _values = new();

    public void Add(string group, string @case, string unit, Transport transport, double value)
        => _values.Add((group, @case, unit, transport, value));

    public static string Size(int bytes) => bytes >= 1024 ? $"{bytes / 1024} KiB" : $"{bytes} B";

    public double Median(string @case, Transport t)
    {
        var v = _values.Where(x => x.Case == @case && x.Transport == t).Select(x => x.Value).Order().ToArray();
        return v.Length == 0 ? double.NaN : v[v.Length / 2];
    }

    private (double Min, double Max) Spread(string @case, Transport t)
    {
        var v = _values.Where(x => x.Case == @case && x.Transport == t).Select(x => x.Value).ToArray();
        return v.Length == 0 ? (double.NaN, double.NaN) : (v.Min(), v.Max());
    }

    /// <summary>A quick run's report (<see cref="Settings.Quick"/>): the HTTP and raw-socket tables, syscalls, the CPU
    /// split and the target check, printed and written to <c>quick.md</c>.</summary>
    public void WriteQuick(string dir, IReadOnlyList<Metric> raw, HttpResults http)
    {
        var md = new StringBuilder();
        WriteHead(md, "Quick benchmark results");
        md.AppendLine("Quick mode: the cases and modes issue 11's target check needs, for judging a change to the data path. The full run (without `--quick`, [`benchmarks.md`](benchmarks.md)) adds the mixed deployments, large downloads and uploads, a YARP gateway, gRPC, the Redis protocol and the socket-level figures.");
        md.AppendLine();
        WriteHttp(md, http);
        WriteRaw(md, raw);
        PairedReport.WriteTargets(md, http.Metrics, raw, http);
        File.WriteAllText(Path.Combine(dir, "quick.md"), md.ToString());
        Console.WriteLine(md.ToString());
    }

    public void Write(string dir, IReadOnlyList<Metric> raw, HttpResults http, IReadOnlyList<Metric> redis, TrackerCost.Result tracker)
    {
        var md = new StringBuilder();
        WriteHead(md, "Benchmark results");
        WriteHttp(md, http);
        md.AppendLine("## A YARP gateway and gRPC (the same processes and slices)");
        md.AppendLine();
        md.AppendLine("**YARP gateway**: the client calls the server app's `/gw/...`, which forwards with YARP's `IHttpForwarder` to the same app's HTTP/1.1 endpoint, two hops per request (the forwarder's handler set up as YARP's client factory does; with the library, `SidecarlessAcceleration.ConnectCallback`). **gRPC**: unary `Echo` of the gRPC example's Transfer contract, a `GrpcChannel` over the mode's h2c client, 64 calls in flight on one connection; and its streaming calls, 16 MiB per call in 64 KiB messages (uploads, downloads, and both ways at once with each message echoed as it comes), repeated for at least 400 ms per slice on a connection of the slice's own, warmed by one call that is not counted. The server's service does no work per byte (the example's makes and checksums every byte). The one-lookup redirect (the measured ceiling, as in the HTTP cases) runs the gRPC cases; not the gateway's, whose second hop would have to wait until both of its ends are in that program's map, as the client's connections do (a miss drops the message).");
        md.AppendLine();
        foreach (var (baseline, columns) in ServiceBenchmarks.Tables)
        {
            PairedReport.WriteTable(md, http.Services, baseline, columns);
        }

        md.AppendLine("## A request/response protocol that is not HTTP (StackExchange.Redis, separate processes)");
        md.AppendLine();
        md.AppendLine("GETs of a 1 KiB value from a Redis-protocol cache hosted in Kestrel (the process-scope example's). **none**: a client process without the library, the server app without it; **A/A**: a second such client process; **accelerated**: a client process with `Scope = Process` (StackExchange.Redis opens its own sockets; the engine's read tracker reports its reads), the server app with the library; **in scope, to a cache without the library**: a client process with `Scope = Process` calling the server app without the library (its sockets' first sends find no peer).");
        md.AppendLine();
        PairedReport.WriteTable(md, redis, "none", RedisBenchmarks.Columns);
        md.AppendLine("The read tracker of process scope (its thread's CPU time from the kernel's schedstat; one process holding both ends of every connection):");
        md.AppendLine();
        md.AppendLine("| load | tracker CPU | |");
        md.AppendLine("|---|---:|---|");
        md.AppendLine(CultureInfo.InvariantCulture, $"| no socket in scope (its wakeups alone) | {tracker.NoSocketsUsPerSecond:0} us/s | {tracker.NoSocketsUsPerSecond / 1e4:0.00}% of a core |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| {tracker.IdleSockets:N0} idle sockets in scope, {tracker.Tracked:N0} of them tracked | {tracker.IdleTrackedUsPerSecond:0} us/s | {tracker.IdleTrackedUsPerSecond / 1e4:0.00}% of a core |");
        foreach (TrackerCost.Busy b in new[] { tracker.DefaultBound, tracker.LargeBound })
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {tracker.BusyConnections:N0} busy connections (64 KiB echoes in one process, {b.MegabytesPerSecond:0} MB/s), bound {b.Bound >> 20} MiB: {b.ReportsPerSecond:0} reports/s | {b.TrackerUsPerSecond:0} us/s | {b.TrackerUsPerSecond / b.ProcessUsPerSecond:P1} of the process's CPU; {b.Degraded} of {2 * tracker.BusyConnections} directions left the fast path, {b.RedirectedShare:P0} of the bytes redirected |");
        }

        md.AppendLine();
        WriteRaw(md, raw);
        PairedReport.WriteTargets(md, http.Metrics, raw, http);

        md.AppendLine("## Other socket-level figures (whole repetitions: medians, min to max)");
        md.AppendLine();
        foreach (var group in _values.GroupBy(v => v.Group))
        {
            string unit = group.First().Unit;
            md.AppendLine(CultureInfo.InvariantCulture, $"| case | TCP ({unit}) | accelerated | UDS | accel / TCP | accel / UDS |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (string c in group.Select(v => v.Case).Distinct())
            {
                string Cell(Transport t)
                {
                    double m = Median(c, t);
                    if (double.IsNaN(m))
                    {
                        return "-";
                    }

                    var (lo, hi) = Spread(c, t);
                    return $"{F(m)} ({F(lo)} to {F(hi)})";
                }

                double tcp = Median(c, Transport.Tcp), acc = Median(c, Transport.Accelerated), uds = Median(c, Transport.Uds);
                md.AppendLine(CultureInfo.InvariantCulture, $"| {c} | {Cell(Transport.Tcp)} | {Cell(Transport.Accelerated)} | {Cell(Transport.Uds)} | {Ratio(acc, tcp)} | {Ratio(acc, uds)} |");
            }

            md.AppendLine();
        }

        File.WriteAllText(Path.Combine(dir, "benchmarks.md"), md.ToString());
        Console.WriteLine(md.ToString());
        var rows = http.Metrics.Concat(http.Services).Concat(redis).Concat(raw).Select(m => (m.Title, PairedRunner.Ratio(m, "accel", m.Id.StartsWith("rtt", StringComparison.Ordinal) ? "tcp" : "none"))).ToList();
        PairedReport.Plot(rows, Path.Combine(dir, "ratios.png"));
    }

    /// <summary>The mixed-deployment modes' description: the full run measures them, a quick run does not.</summary>
    private string MixedModes => settings.Quick ? "" :
        "**plain client** = a default `SocketsHttpHandler` without the library calling the accelerated app (a same-host client " +
        "without the library, such as a probe or another team's service), **accelerated client, plain server** = the " +
        "accelerated handler calling an app without the library (a service with the library calling a same-host one without it), ";

    private void WriteHead(StringBuilder md, string title)
    {
        md.AppendLine(CultureInfo.InvariantCulture, $"# {title}");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {(settings.Quick ? "quick mode" : "full mode")}. Machine: {Environment.ProcessorCount} CPUs ({CpuModel()}), {RuntimeInformation.OSDescription}, .NET {Environment.Version}.");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"""
            How: two long-lived processes (HTTP: this client and one server process hosting a Kestrel app per mode), the modes
            switched in short slices: {settings.Rounds} rounds, in each every mode runs twice per case in palindromic order
            (A B C C B A, the start rotating); the sequential cases instead interleave the modes request by request, each turn
            through the modes in a shuffled order. Every mode gets new connections at the start of each round (a connection
            keeps a lasting edge of a few percent over another, which would otherwise read as the mode's), and an app of its
            own (with the modes interleaved, an app that served several of them was warmer, so faster, than one that served one). A cell is the **median over the rounds of the paired ratio** mode / baseline,
            with a distribution-free 95% interval; an interval that holds 1.00 is "within noise", never a win.
            Modes: **none** = no library at all (Kestrel's socket transport, a default `SocketsHttpHandler`), **A/A** = the
            same again through a second client to a second app without the library (the run's own noise, app and
            connections included), **off** = the library with `Enabled = false`,
            **accelerated** (an `IHttpClientFactory` client), **accelerated handler** = a default `SocketsHttpHandler` whose
            `ConnectCallback` is the library's `SidecarlessAcceleration.ConnectCallback` (the library without the factory, as
            YARP uses it), {MixedModes}**UDS** = a Unix domain socket (no library), **factory** = an `IHttpClientFactory` client without
            the library (server: an app without the library), **one-lookup redirect** = no library's client and app with their
            connections redirected by the least sk_msg program that redirects (the measured ceiling; details under the
            targets), **factory client, redirected** = the factory client with its connections redirected the same way (the
            accelerated client's own ceiling). Ratios < 1 are faster for times and costs, > 1 for rates.
            """);
        md.AppendLine();
        if (Paired.PairedRunner.Repeated.Count > 0)
        {
            // A request that hangs (an h2c 256 KiB request waited for its response headers for 100 s in about one run in
            // 17, without the library too; results/ANALYSIS.md) no longer fails the run: its round is measured again.
            md.AppendLine(CultureInfo.InvariantCulture, $"**Rounds measured again** because a request made no progress for {Http.StallWatch.AbortAfter.TotalSeconds:0} s (the stall files in `results/` record both processes' threads and sockets):");
            md.AppendLine();
            foreach (string line in Paired.PairedRunner.Repeated)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"- {line}");
            }

            md.AppendLine();
        }
    }

    /// <summary>The HTTP tables (every mode against no library, then against the factory client without the library),
    /// the accelerated app's evidence, syscalls, the CPU split and the sk_msg program's cost.</summary>
    private static void WriteHttp(StringBuilder md, HttpResults http)
    {
        md.AppendLine("## HTTP (IHttpClientFactory / SocketsHttpHandler client, Kestrel server, separate processes)");
        md.AppendLine();
        PairedReport.WriteTable(md, http.Metrics, "none", [("none-aa", "A/A"), ("factory", "factory / none"), ("off", "off / none"), ("accel", "accelerated / none"), ("handler", "accelerated handler / none"), ("floor", "one-lookup redirect (the kernel's floor) / none"), ("factory-floor", "factory client, redirected / none"), ("plain", "plain client, accelerated server / none"), ("to-plain", "accelerated client, plain server / none"), ("uds", "UDS / none")]);
        md.AppendLine("The library's own effect, against an IHttpClientFactory client without it (both clients then pay the factory's handlers):");
        md.AppendLine();
        PairedReport.WriteTable(md, http.Metrics, "factory", [("off", "off / factory"), ("accel", "accelerated / factory"), ("factory-floor", "factory client, redirected (its ceiling) / factory")]);
        md.AppendLine(CultureInfo.InvariantCulture, $"Evidence: the accelerated server app redirected {http.RedirectedShare:P1} of the bytes its registered sockets sent; its writers waited for their readers {http.PacedWrites} times; {http.DegradedDirections} connection directions left the fast path while their peer was open.");
        md.AppendLine();
        if (http.SyscallsPerRequest.Count > 0)
        {
            md.AppendLine("Syscalls per request, both processes (strace -f -c, sequential 1 KiB, a separate pass). sched_yield is counted apart: it is the thread pool's idle workers spinning before they sleep, as many in every mode and varying by several between passes (`--syscalls-only` lists every call by mode):");
            md.AppendLine();
            md.AppendLine("| protocol | none | off | accelerated |");
            md.AppendLine("|---|---:|---:|---:|");
            foreach (string proto in new[] { "h1", "h2c" })
            {
                string name = proto == "h1" ? "HTTP/1.1" : "h2c";
                var (none, off, accel) = (http.SyscallsPerRequest[("none", proto)], http.SyscallsPerRequest[("off", proto)], http.SyscallsPerRequest[("accel", proto)]);
                md.AppendLine(CultureInfo.InvariantCulture, $"| {name}, without sched_yield | {none.Others:0.00} | {off.Others:0.00} | {accel.Others:0.00} |");
                md.AppendLine(CultureInfo.InvariantCulture, $"| {name}, sched_yield | {none.Yields:0.0} | {off.Yields:0.0} | {accel.Yields:0.0} |");
            }

            md.AppendLine();
        }

        if (http.Profiles.Count > 0)
        {
            WriteProfiles(md, http.Profiles);
        }

        md.AppendLine(CultureInfo.InvariantCulture, $"The sk_msg program's own cost under accelerated HTTP load (the kernel's BPF statistics, BPF_ENABLE_STATS, read through the loader; a separate pass): {http.Program.RunNs:0} ns per run over {http.Program.Runs} runs for {http.Program.Requests} requests, {http.Program.NsPerRequest:0} ns per request (the library's transports have windows: a verdict covers up to {Size((int)AccelerationEngine.WindowBytes)} of a connection's sends, so the program runs once per window, not per message). The kernel's timing itself is part of it: an sk_msg program that returns at once, timed the same way right after (raw 64 B round trips), measured {http.Program.FloorNs:0} ns, which leaves {http.Program.RunNs - http.Program.FloorNs:0} ns per run for the program's own work. In those raw round trips the sk_msg program measured {http.Program.RawMessageNs:0} ns, and a program that does nothing but one sockhash lookup and the redirect (the least any redirecting program costs; no socket storage, statistics or fallback, so not safe for real traffic) {http.Program.RedirectFloorNs:0} ns; under the same HTTP load as the sk_msg program, the measured ceiling's program (the same, with a verdict that covers the next {Size(MinimalRedirect.WindowBytes)} of a connection's sends) measured {http.Program.RedirectUnderLoadNs:0} ns per run over {http.Program.RedirectRunsUnderLoad} runs. Raw sockets registered through the public API have no windows: their program runs for every send.");
        md.AppendLine();
    }

    private static void WriteRaw(StringBuilder md, IReadOnlyList<Metric> raw)
    {
        md.AppendLine("## Raw sockets (two threads, one process, blocking ping-pong)");
        md.AppendLine();
        PairedReport.WriteTable(md, raw, "tcp", RawSocketBenchmarks.Columns);
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"The kernel's floor: a pair redirected by an sk_msg program of nineteen instructions on a sockhash of its own (one lookup by port and the redirect, with a verdict that covers the next {Size(MinimalRedirect.WindowBytes)} of the socket's sends, so that the kernel reuses it without running the program; no socket storage, statistics or fallback, so not safe for real traffic), checked to have moved every byte by the redirect. It is the most any sk_msg redirect can gain here: the accelerated column's ceiling. Both paths make the same two wake-ups of a thread on the other CPU per round trip, a large part of it on this VM.");
        md.AppendLine();
    }

    private static string Ratio(double a, double b) => double.IsNaN(a) || double.IsNaN(b) || b == 0 ? "-" : (a / b).ToString("0.00", CultureInfo.InvariantCulture);

    private static string F(double v) => v >= 100 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("0.0", CultureInfo.InvariantCulture);

    private static string CpuModel()
        => File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "unknown CPU";

    /// <summary>The CPU split table: per class the share of both processes' samples and its time per request, then
    /// the scheduler events per request.</summary>
    public static void WriteProfiles(StringBuilder md, Dictionary<string, ProfileRun> profiles)
    {
        static string Run(string run) => run.Replace("h1", "HTTP/1.1", StringComparison.Ordinal).Replace("accel", "accelerated", StringComparison.Ordinal).Replace("none", "no library", StringComparison.Ordinal);
        md.AppendLine("Where the CPU time of both processes goes, 1 KiB responses, 64 concurrent (perf, cpu-clock samples of the two processes with their kernel call chains; share of the samples, and that share of the CPU time per request; the median of three 3 s profiles per row, which also makes the CPU column the sum of the class medians):");
        md.AppendLine();
        md.AppendLine($"| run | CPU per request | {string.Join(" | ", CpuProfile.Classes)} |");
        md.AppendLine($"|---|---:|{string.Concat(CpuProfile.Classes.Select(_ => "---:|"))}");
        foreach (var (run, p) in profiles)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {Run(run)} | {p.CpuUsPerRequest:0.0} us | {string.Join(" | ", CpuProfile.Classes.Select(c => $"{p.Shares[c]:0}% ({p.Us(c):0.0} us)"))} |");
        }

        md.AppendLine();
        md.AppendLine("Each sample is charged to the first frame of its kernel call chain that belongs to a class: copies, allocations, locks and this VM's interrupt enabling (`pvm_irq_enable`, where a sample lands when interrupts were off while it was due) go to their caller, and waking a socket's reader counts as a wake-up on both paths. A sample inside a sched_yield call is counted apart: it is the .NET thread pool's idle workers spinning before they sleep (in every mode; a switch to another runnable thread from inside the call is counted with it; the spinning's user-space part is in user space), the runtime's cost and not a socket path's. The TCP/IP time without the library is the most a redirect can remove (the ceiling).");
        md.AppendLine();
        if (profiles.Values.All(p => p.EventsPerRequest is not null))
        {
            md.AppendLine("Scheduler events and syscalls per request, both processes (perf stat on tracepoints, the same load, slices of their own; medians of three):");
            md.AppendLine();
            md.AppendLine($"| run | {string.Join(" | ", CpuProfile.Events.Select(e => e.Title))} |");
            md.AppendLine($"|---|{string.Concat(CpuProfile.Events.Select(_ => "---:|"))}");
            foreach (var (run, p) in profiles)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| {Run(run)} | {string.Join(" | ", CpuProfile.Events.Select(e => $"{p.EventsPerRequest![e.Event]:0.00}"))} |");
            }

            md.AppendLine();
        }
    }
}
