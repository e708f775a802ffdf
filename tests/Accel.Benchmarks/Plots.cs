namespace Accel.Benchmarks;

/// <summary>PNG bar charts of the medians: raw round trips and HTTP/1.1 latency by size.</summary>
internal static class Plots
{
    public static void Write(Report report, string dir)
    {
        Chart(report, dir, "rtt.png", "Socket round trip p50 (us, lower is better)", s => $"round trip {Report.Size(s)}, p50");
        Chart(report, dir, "http1-p50.png", "HTTP/1.1 sequential p50 (us, lower is better)", s => $"HTTP/1.1 {Report.Size(s)}, p50");
        Chart(report, dir, "h2c-p50.png", "h2c sequential p50 (us, lower is better)", s => $"h2c {Report.Size(s)}, p50");
    }

    private static void Chart(Report report, string dir, string file, string title, Func<int, string> caseOf)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var transports = Enum.GetValues<Transport>();
        var bars = new List<ScottPlot.Bar>();
        for (int s = 0; s < Settings.Sizes.Length; s++)
        {
            for (int t = 0; t < transports.Length; t++)
            {
                double v = report.Median(caseOf(Settings.Sizes[s]), transports[t]);
                bars.Add(new ScottPlot.Bar { Position = s * (transports.Length + 1) + t, Value = double.IsNaN(v) ? 0 : v, FillColor = palette.GetColor(t) });
            }
        }

        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(
            Settings.Sizes.Select((_, s) => (double)(s * (transports.Length + 1) + 1)).ToArray(),
            Settings.Sizes.Select(Report.Size).ToArray());
        plot.Legend.ManualItems.AddRange(transports.Select((t, i) => new ScottPlot.LegendItem { LabelText = t.ToString(), FillColor = palette.GetColor(i) }));
        plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
        plot.Title(title);
        plot.Axes.Margins(bottom: 0);
        plot.SavePng(Path.Combine(dir, file), 800, 450);
    }
}
