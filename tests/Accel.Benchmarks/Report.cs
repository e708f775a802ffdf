using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

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

    public void Write(string dir)
    {
        var md = new StringBuilder();
        md.AppendLine("# Benchmark results");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {(settings.Quick ? "quick mode" : "full mode")}, {settings.Repetitions} interleaved repetitions per case; medians, with min to max over repetitions.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Environment.ProcessorCount} CPUs ({CpuModel()}), {RuntimeInformation.OSDescription}, .NET {Environment.Version}.");
        md.AppendLine("Client and server in one process for HTTP (Kestrel + IHttpClientFactory), two threads for raw sockets; loopback.");
        md.AppendLine("TCP = the library present with `Enabled = false` (HTTP) or plain sockets (raw); UDS = Unix domain socket.");
        md.AppendLine("Ratios below 1 mean accelerated is faster for times, and above 1 means faster for rates.");
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

        md.AppendLine(Targets());
        File.WriteAllText(Path.Combine(dir, "benchmarks.md"), md.ToString());
        Plots.Write(this, dir);
    }

    private string Targets()
    {
        var t = new StringBuilder();
        t.AppendLine("## Against the targets (ratio accelerated / TCP, this run)");
        t.AppendLine();
        t.AppendLine("| target | goal | measured | met |");
        t.AppendLine("|---|---|---:|---|");
        void Row(string name, string @case, bool lowerIsBetter, double goal)
        {
            double r = Median(@case, Transport.Accelerated) / Median(@case, Transport.Tcp);
            bool met = lowerIsBetter ? r <= goal : r >= goal;
            t.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {(lowerIsBetter ? "<=" : ">=")} {goal:0.00} | {r:0.00} | {(met ? "yes" : "no")} |");
        }

        Row("HTTP/1.1 1 KiB sequential p50", "HTTP/1.1 1 KiB, p50", true, 0.80);
        Row("h2c 1 KiB sequential p50", "h2c 1 KiB, p50", true, 0.85);
        Row("HTTP/1.1 throughput", "HTTP/1.1 1 KiB, 64 concurrent, requests/s", false, 1.40);
        Row("h2c throughput", "h2c 1 KiB, 64 concurrent, requests/s", false, 1.25);
        Row("HTTP/1.1 CPU per request", "HTTP/1.1 1 KiB, 64 concurrent, CPU per request", true, 0.70);
        Row("HTTP/1.1 256 KiB p50 (never slower)", "HTTP/1.1 256 KiB, p50", true, 1.00);
        Row("raw round trip 64 B p50", "round trip 64 B, p50", true, 0.70);
        Row("in the map, not accelerated (bulk time)", "bulk, socket in the map but not accelerated", false, 1 / 1.02);
        return t.ToString();
    }

    private static string Ratio(double a, double b) => double.IsNaN(a) || double.IsNaN(b) || b == 0 ? "-" : (a / b).ToString("0.00", CultureInfo.InvariantCulture);

    private static string F(double v) => v >= 100 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("0.0", CultureInfo.InvariantCulture);

    private static string CpuModel()
        => File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "unknown CPU";
}
