using System.Globalization;
using System.Text;
using Accel.Benchmarks.Http;

namespace Accel.Benchmarks.Paired;

/// <summary>The paired tables, the run's validity (A/A), the targets of issue 11, and the ratio plot.</summary>
internal static class PairedReport
{
    /// <summary>Ratio cell "0.87 [0.84-0.90]" and what it means: better, worse, or within noise (interval holds 1.00).</summary>
    public static string Cell(MedianInterval r, bool higherIsBetter)
    {
        if (double.IsNaN(r.Median))
        {
            return "-";
        }

        string verdict = r.Contains(1.0) ? "within noise" : (r.Median > 1) == higherIsBetter ? "**better**" : "worse";
        return string.Create(CultureInfo.InvariantCulture, $"{r.Median:0.00} [{r.Low:0.00}-{r.High:0.00}] {verdict}");
    }

    /// <summary>One row per metric: the baseline's median, then each column's paired ratio. A column whose mode no
    /// metric has (not measured in this run, such as the mixed deployments in a quick run) is left out, and so is a row
    /// whose baseline was not run (<see cref="PairedCase.Without"/>).</summary>
    public static void WriteTable(StringBuilder md, IReadOnlyList<Metric> metrics, string baseline, IReadOnlyList<(string Mode, string Title)> columns)
    {
        columns = [.. columns.Where(c => metrics.Any(m => m.Rounds.ContainsKey(c.Mode)))];
        md.AppendLine(CultureInfo.InvariantCulture, $"| case | {baseline}, median | {string.Join(" | ", columns.Select(c => c.Title))} |");
        md.AppendLine($"|---|---:|{string.Concat(columns.Select(_ => "---|"))}");
        foreach (Metric m in metrics)
        {
            MedianInterval abs = PairedRunner.Absolute(m, baseline);
            if (double.IsNaN(abs.Median))
            {
                continue;
            }

            string cells = string.Join(" | ", columns.Select(c => Cell(PairedRunner.Ratio(m, c.Mode, baseline), m.HigherIsBetter)));
            md.AppendLine(CultureInfo.InvariantCulture, $"| {m.Title} | {F(abs.Median)} {m.Unit} | {cells} |");
        }

        md.AppendLine();
    }

    /// <summary>Issue 11's targets: met when the median meets the goal and the whole interval lies on the good side of
    /// 1.00. The run is void when an A/A interval does not hold 1.00.</summary>
    public static void WriteTargets(StringBuilder md, IReadOnlyList<Metric> http, IReadOnlyList<Metric> raw, HttpResults results)
    {
        Metric M(IReadOnlyList<Metric> all, string id) => all.Single(m => m.Id == id);
        string[] targeted = ["h1-1024-p50", "h2c-1024-p50", "h1-rps", "h1-cpu", "h2c-rps", "h2c-cpu", "h1-262144-p50", "h2c-262144-p50"];
        var aaMisses = http.Concat(results.Services).Where(m => !PairedRunner.Ratio(m, "none-aa", "none").Contains(1.0)).Select(m => (m.Id, m.Title))
            .Concat(raw.Where(m => !PairedRunner.Ratio(m, "tcp-aa", "tcp").Contains(1.0)).Select(m => (m.Id, m.Title))).ToList();
        var aaFailures = aaMisses.Where(m => targeted.Contains(m.Id) || m.Id.StartsWith("rtt", StringComparison.Ordinal)).Select(m => m.Title).ToList();
        md.AppendLine("## Against the targets (issue 11: accelerated / no library)");
        md.AppendLine();
        md.AppendLine(aaFailures.Count == 0
            ? "The A/A rows of the targeted cases hold 1.00: the run is valid."
            : $"**Run void for the targets:** the A/A interval misses 1.00 in {string.Join("; ", aaFailures)}.");
        if (aaMisses.Count > aaFailures.Count)
        {
            md.AppendLine();
            md.AppendLine($"(A/A also misses 1.00, outside the targets, in: {string.Join("; ", aaMisses.Select(m => m.Title).Except(aaFailures))}. With about 20 intervals of 96 to 98% each, one or two misses per run are expected by chance.)");
        }

        md.AppendLine();
        md.AppendLine("| target | goal | ceiling: the profile's estimate | ceiling: a one-lookup redirect, measured | the accelerated client's own ceiling: the factory client, redirected | accelerated / no library | met | within 2 points of the ceiling, like for like | for comparison: accelerated / IHttpClientFactory without the library | accelerated handler (no factory) / no library |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        var accelShort = new List<string>(); // targets neither met nor within 2 points of the ceiling, by the accelerated client
        var handlerShort = new List<string>();
        // A target that falls short, with the paired ratio to its ceiling to three places (1.02 may round 1.024).
        static string Short(string name, MedianInterval? against) => against is { } a && !double.IsNaN(a.Median)
            ? string.Create(CultureInfo.InvariantCulture, $"{name} ({a.Median:0.000} of its ceiling)") : name;
        void Row(string name, MedianInterval r, bool higherIsBetter, double goal, double? estimate, MedianInterval? measured, string? id = null, MedianInterval? rawAgainstCeiling = null)
        {
            bool Meets(MedianInterval x) => aaFailures.Count == 0 && !double.IsNaN(x.Median) && (higherIsBetter ? x.Median >= goal && x.Low > 1 : x.Median <= goal && x.High < 1);
            bool met = Meets(r);
            string own = id is null ? "-" : Cell(PairedRunner.Ratio(M(http, id), "accel", "factory"), higherIsBetter);
            MedianInterval? handlerRatio = id is null ? null : PairedRunner.Ratio(M(http, id), "handler", "none");
            MedianInterval? factoryFloor = id is null ? null : PairedRunner.Ratio(M(http, id), "factory-floor", "none");
            string handler = handlerRatio is { } h ? Cell(h, higherIsBetter) : "-";
            // Like for like, and paired within each round: the accelerated (factory) client against the factory client
            // through the redirect, the handler against the redirect under a default handler, raw sockets against a
            // redirected raw pair.
            MedianInterval? accelAgainst = id is null ? rawAgainstCeiling : PairedRunner.Ratio(M(http, id), "accel", "factory-floor");
            MedianInterval? handlerAgainst = id is null ? null : PairedRunner.Ratio(M(http, id), "handler", "floor");
            string accelNear = NearCeiling(accelAgainst, r, higherIsBetter), handlerNear = handlerRatio is { } hr ? NearCeiling(handlerAgainst, hr, higherIsBetter) : "-";
            string near = accelNear + (handlerRatio is null ? "" : $"; handler: {handlerNear}");
            if (!met && !accelNear.StartsWith("yes", StringComparison.Ordinal))
            {
                accelShort.Add(Short(name, accelAgainst));
            }

            if (handlerRatio is { } h2 && !Meets(h2) && !handlerNear.StartsWith("yes", StringComparison.Ordinal))
            {
                handlerShort.Add(Short(name, handlerAgainst));
            }

            md.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {(higherIsBetter ? ">=" : "<=")} {goal:0.00} | {(estimate is { } c ? c.ToString("0.00", CultureInfo.InvariantCulture) : "-")} | {(measured is { } m ? Cell(m, higherIsBetter) : "-")} | {(factoryFloor is { } ff ? Cell(ff, higherIsBetter) : "-")} | {Cell(r, higherIsBetter)} | {(met ? "yes" : "no")} | {near} | {own} | {handler} |");
        }

        MedianInterval Floor(string id) => PairedRunner.Ratio(M(http, id), "floor", "none");

        // The most the redirect can take off a request, from the profile of the 64-way load: the TCP/IP time without
        // the library, less the TCP/IP and sockmap time that remain with it. Everything else is assumed unchanged.
        double? Removable(string proto) => results.Profiles.TryGetValue($"{proto} none", out var none) && results.Profiles.TryGetValue($"{proto} accel", out var accel)
            ? none.Us("TCP/IP stack") - accel.Us("TCP/IP stack") - accel.Us("sockmap + BPF")
            : null;
        double? CpuCeiling(string proto) => Removable(proto) is { } r ? (results.Profiles[$"{proto} none"].CpuUsPerRequest - r) / results.Profiles[$"{proto} none"].CpuUsPerRequest : null;
        double? RateCeiling(string proto) => CpuCeiling(proto) is { } c ? 1 / c : null; // both CPUs are saturated: rate ~ 1 / CPU per request
        double? LatencyCeiling(string proto, string id)
        {
            double p50 = PairedRunner.Absolute(M(http, id), "none").Median; // the table's "none, median"
            return Removable(proto) is { } r && !double.IsNaN(p50) ? (p50 - r) / p50 : null;
        }

        var offWorst = http.Select(m => (m, r: PairedRunner.Ratio(m, "off", "none"))).ToList();
        bool offMet = offWorst.All(x => x.r.Contains(1.0) && Math.Abs(x.r.Median - 1) <= 0.02);
        // Against the factory client without the library (what "off" is apart from the library), split into the cells
        // that differ significantly and those whose median strays beyond ±2% within noise; and how many cells of the
        // A/A row stray as far (the run's own noise: a median can miss ±2% with no difference at all).
        var offOwn = http.Select(m => (m, r: PairedRunner.Ratio(m, "off", "factory"))).ToList();
        string Cells(IEnumerable<(Metric m, MedianInterval r)> cells) => string.Join(", ", cells.Select(x => string.Create(CultureInfo.InvariantCulture,
            $"{x.m.Title}: {x.r.Median:0.00}{(x.r.Contains(1.0) ? "" : (x.r.Median > 1) == x.m.HigherIsBetter ? " better" : " worse")}")).DefaultIfEmpty("none"));
        int aaStray = http.Count(m => Math.Abs(PairedRunner.Ratio(m, "none-aa", "none").Median - 1) > 0.02);
        md.AppendLine(CultureInfo.InvariantCulture, $"| library present but off, every case | within noise, median within ±2% | 1.00 | - | - | {string.Join(", ", offWorst.Where(x => !x.r.Contains(1.0) || Math.Abs(x.r.Median - 1) > 0.02).Select(x => $"{x.m.Title}: {x.r.Median:0.00}").DefaultIfEmpty("all within"))} | {(offMet ? "yes" : "no")} | - | off / factory, significant: {Cells(offOwn.Where(x => !x.r.Contains(1.0)))}; median beyond ±2% within noise: {Cells(offOwn.Where(x => x.r.Contains(1.0) && Math.Abs(x.r.Median - 1) > 0.02))} (A/A: {aaStray} of {http.Count} cells beyond ±2%) | - |");
        Row("HTTP/1.1 1 KiB sequential p50", PairedRunner.Ratio(M(http, "h1-1024-p50"), "accel", "none"), false, 0.88, LatencyCeiling("h1", "h1-1024-p50"), Floor("h1-1024-p50"), "h1-1024-p50");
        Row("h2c 1 KiB sequential p50", PairedRunner.Ratio(M(http, "h2c-1024-p50"), "accel", "none"), false, 0.92, LatencyCeiling("h2c", "h2c-1024-p50"), Floor("h2c-1024-p50"), "h2c-1024-p50");
        Row("HTTP/1.1 1 KiB, 64 concurrent, requests/s", PairedRunner.Ratio(M(http, "h1-rps"), "accel", "none"), true, 1.28, RateCeiling("h1"), Floor("h1-rps"), "h1-rps");
        Row("HTTP/1.1 CPU time per request", PairedRunner.Ratio(M(http, "h1-cpu"), "accel", "none"), false, 0.78, CpuCeiling("h1"), Floor("h1-cpu"), "h1-cpu");
        Row("h2c 1 KiB, 64 concurrent streams, requests/s", PairedRunner.Ratio(M(http, "h2c-rps"), "accel", "none"), true, 1.07, RateCeiling("h2c"), Floor("h2c-rps"), "h2c-rps");
        Row("h2c CPU time per request", PairedRunner.Ratio(M(http, "h2c-cpu"), "accel", "none"), false, 0.93, CpuCeiling("h2c"), Floor("h2c-cpu"), "h2c-cpu");
        Row("HTTP/1.1 256 KiB p50", PairedRunner.Ratio(M(http, "h1-262144-p50"), "accel", "none"), false, 0.85, null, Floor("h1-262144-p50"), "h1-262144-p50");
        Row("h2c 256 KiB p50", PairedRunner.Ratio(M(http, "h2c-262144-p50"), "accel", "none"), false, 0.85, null, Floor("h2c-262144-p50"), "h2c-262144-p50");
        foreach (Metric m in raw)
        {
            Row(m.Title, PairedRunner.Ratio(m, "accel", "tcp"), false, 0.72, null, PairedRunner.Ratio(m, "floor", "tcp"), rawAgainstCeiling: PairedRunner.Ratio(m, "accel", "floor"));
        }

        ProgramCost program = results.Program;
        // With windows (the library's transports, and the ceiling's program), a run covers many messages: a request is at least
        // two (the request and its response), so half the time per request is at least the time per message.
        md.AppendLine(CultureInfo.InvariantCulture, $"| the sk_msg program's own cost | <= 250 ns per message | - | {program.RedirectFloorNs:0} ns in raw round trips, run for every send; {program.RedirectUnderLoadNs:0} ns per run under HTTP load, with a verdict for every {Report.Size(MinimalRedirect.WindowBytes)} ({program.RedirectRunsUnderLoad} runs for the load's {program.Requests} requests) | - | {program.NsPerRequest:0} ns per request under HTTP load, so at most {program.NsPerRequest / 2:0} ns per message ({program.RunNs:0} ns per run, {program.RunNs - program.FloorNs:0} without the kernel's timing, {program.Runs} runs, a verdict for every {Report.Size((int)AccelerationEngine.WindowBytes)} of a connection's sends); {program.RawMessageNs:0} ns in raw round trips, run for every send | {(program.NsPerRequest / 2 <= 250 ? "yes" : "no")} | {program.RawMessageNs - program.RedirectFloorNs:0} ns above it in raw round trips, {program.RunNs - program.RedirectUnderLoadNs:0} ns per run under HTTP load | - | - |");
        md.AppendLine();
        md.AppendLine(aaFailures.Count > 0 ? "The run is void: no target is judged." : string.Create(CultureInfo.InvariantCulture,
            $"By the issue's rule (met, or within 2 points of the ceiling where the ceiling lies short of the goal): the accelerated client {(accelShort.Count == 0 ? "meets every target or is within 2 points of its ceiling" : $"falls short in: {string.Join("; ", accelShort)}")}; the handler client {(handlerShort.Count == 0 ? "meets every HTTP target or is within 2 points of its ceiling" : $"falls short in: {string.Join("; ", handlerShort)}")}; the library present but off differs significantly from the same factory client without it in {offOwn.Count(x => !x.r.Contains(1.0))} of {offOwn.Count} cells."));
        md.AppendLine();
        md.AppendLine("Within 2 points of the ceiling (the issue's rule where the ceiling is found elsewhere): the median of the paired ratio client / its ceiling, taken within each round (the table below), is at most 0.02 on the wrong side of 1.00 (the difference of the two medians against no library, in the columns before, carries the noise of both); \"gain shown\" when the client's interval against no library also lies entirely on the good side of 1.00. Like for like: the one-lookup redirect under a default SocketsHttpHandler calling a plain Kestrel app (no library, no IHttpClientFactory) is the handler client's ceiling, and the same redirect under an IHttpClientFactory client without the library (its logging handlers included) is the accelerated client's, since the factory's own cost stays whatever the sockets do.");
        md.AppendLine();
        WriteAgainstCeiling(md, http, raw, targeted);

        // The issue's other rule: never worse than no library, in any case. User-visible quantities only (context
        // switches are a diagnosis, not a case).
        var worse = http.Concat(results.Services).Where(m => !m.Id.EndsWith("csw", StringComparison.Ordinal))
            .SelectMany(m => new[] { ("accelerated", "accel"), ("accelerated handler", "handler"), ("plain client of an accelerated server", "plain"), ("accelerated client of a plain server", "to-plain") }.Select(c => (m, c.Item1, r: PairedRunner.Ratio(m, c.Item2, "none"))))
            .Where(x => !double.IsNaN(x.r.Median) && !x.r.Contains(1.0) && (x.r.Median > 1) != x.m.HigherIsBetter)
            .Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.Item2}: {x.m.Title} {x.r.Median:0.00} [{x.r.Low:0.00}-{x.r.High:0.00}]")
                + (x.Item2 == "accelerated" ? $" (against the factory client without the library: {Cell(PairedRunner.Ratio(x.m, "accel", "factory"), x.m.HigherIsBetter)}; the factory client through the one-lookup redirect, against no library: {Cell(PairedRunner.Ratio(x.m, "factory-floor", "none"), x.m.HigherIsBetter)})" : "")).ToList();
        md.AppendLine(worse.Count == 0
            ? results.Services.Count > 0
                ? "Never worse than no library: no HTTP, gateway or gRPC case is significantly worse, in either accelerated client, nor between a client and a server of which only one has the library."
                : "Never worse than no library: no HTTP case is significantly worse, in either accelerated client (a quick run measures neither the gateway, gRPC nor mixed deployments)."
            : $"**Significantly worse than no library:** {string.Join("; ", worse)}. The accelerated client is an IHttpClientFactory client, and the factory's own handlers have a cost of their own (the factory / none column).");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"The ceiling column: the redirect removes the TCP/IP time of a request and adds the sockmap path's; the profile of the 64-way 1 KiB load gives both (above), and every other cost is taken as unchanged. CPU per request: (none - removable) / none; requests/s: its inverse, as both CPUs are saturated; sequential p50: the same microseconds off the no-library p50, an estimate (the profile is of the concurrent load). A profile varies from run to run, so the ceiling does too. The measured ceiling: the same case and client as no library, with both ends of each connection redirected by a one-lookup sk_msg program (nineteen instructions, keyed by port, its verdict covering the next {Report.Size(MinimalRedirect.WindowBytes)} of a connection's sends so that the kernel reuses it without running the program; a sock_ops program puts the connections in its sockhash; no socket storage, statistics, flow control or fallback, so not safe for real traffic) and its app reading in the 64 KiB Kestrel blocks the library's apps read in, checked afterwards to have moved the client's bytes by the redirect only: the most any sk_msg redirect can gain for HTTP here with a default SocketsHttpHandler (the library's own HttpClient stream gains more in large bodies: it sends fewer, larger writes and skips HTTP/2's peek after a full read). Raw round trips: the ratio of a pair redirected by the same program (the raw table's floor column), the most any sk_msg redirect gains here. The program's cost: the same lookup and redirect run for every send (no window), timed the same way in raw 64 B round trips (the kernel's timing included in both); under HTTP load, the ceiling's own program per run. A program whose verdict covers {Report.Size(MinimalRedirect.WindowBytes)} runs once in {MinimalRedirect.WindowBytes / 1024} sends of 1 KiB, so its cost per message is that fraction of its cost per run.");
        md.AppendLine();
    }

    /// <summary>Each client against the measured ceiling directly: the paired ratio client / one-lookup redirect, taken
    /// within each round like every other ratio. The target table compares two medians, each against no library, whose
    /// difference carries the noise of both; this ratio says whether a gap to the ceiling is there at all.</summary>
    private static void WriteAgainstCeiling(StringBuilder md, IReadOnlyList<Metric> http, IReadOnlyList<Metric> raw, string[] targeted)
    {
        var cases = targeted.Select(id => http.Single(m => m.Id == id)).Select(m => (m, accel: "accel", handler: (string?)"handler"))
            .Concat(raw.Select(m => (m, accel: "accel", handler: (string?)null))).ToList();
        md.AppendLine("Against the measured ceiling directly, like for like (the paired ratio client / the same kind of client through the one-lookup redirect, within each round; < 1.00 is faster for times, > 1.00 for rates; \"within noise\" means no gap to the ceiling could be shown):");
        md.AppendLine();
        md.AppendLine("| case | accelerated / its ceiling (HTTP: the factory client, redirected; raw: a redirected pair) | accelerated handler (no factory) / one-lookup redirect | for comparison: accelerated / one-lookup redirect |");
        md.AppendLine("|---|---|---|---|");
        foreach (var (m, accel, handler) in cases)
        {
            string h = handler is null ? "-" : Cell(PairedRunner.Ratio(m, handler, "floor"), m.HigherIsBetter);
            string own = handler is null ? Cell(PairedRunner.Ratio(m, accel, "floor"), m.HigherIsBetter) : Cell(PairedRunner.Ratio(m, accel, "factory-floor"), m.HigherIsBetter);
            string plain = handler is null ? "-" : Cell(PairedRunner.Ratio(m, accel, "floor"), m.HigherIsBetter);
            md.AppendLine(CultureInfo.InvariantCulture, $"| {m.Title} | {own} | {h} | {plain} |");
        }

        md.AppendLine();
    }

    /// <summary>Whether a client is within 2 points of its ceiling: <paramref name="againstCeiling"/> is the paired
    /// ratio client / ceiling, <paramref name="againstNone"/> client / no library (for "gain shown").</summary>
    private static string NearCeiling(MedianInterval? againstCeiling, MedianInterval againstNone, bool higherIsBetter)
    {
        if (againstCeiling is not { } c || double.IsNaN(c.Median) || double.IsNaN(againstNone.Median))
        {
            return "-";
        }

        bool near = higherIsBetter ? c.Median >= 0.98 : c.Median <= 1.02;
        bool gain = higherIsBetter ? againstNone.Low > 1 : againstNone.High < 1;
        return !near ? "no" : gain ? "yes, gain shown" : "yes, within noise of 1.00";
    }

    /// <summary>accelerated / no library for every case, with its interval: a forest plot.</summary>
    public static void Plot(IReadOnlyList<(string Title, MedianInterval Ratio)> rows, string file)
    {
        var plot = new ScottPlot.Plot();
        for (int i = 0; i < rows.Count; i++)
        {
            double y = rows.Count - 1 - i;
            var (_, r) = rows[i];
            if (double.IsNaN(r.Median))
            {
                continue;
            }

            var line = plot.Add.Line(r.Low, y, r.High, y);
            line.LineWidth = 3;
            plot.Add.Marker(r.Median, y, ScottPlot.MarkerShape.FilledCircle, 8);
        }

        var one = plot.Add.VerticalLine(1.0);
        one.LinePattern = ScottPlot.LinePattern.Dashed;
        plot.Axes.Left.SetTicks(Enumerable.Range(0, rows.Count).Select(i => (double)(rows.Count - 1 - i)).ToArray(), rows.Select(r => r.Title).ToArray());
        plot.Title("accelerated / no library: median of paired ratios, 95% interval");
        plot.XLabel("ratio (times: < 1 is faster; rates: > 1 is faster)");
        plot.SavePng(file, 1100, 80 + 28 * rows.Count);
    }

    private static string F(double v) => double.IsNaN(v) ? "-" : v >= 100 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("0.00", CultureInfo.InvariantCulture);
}
