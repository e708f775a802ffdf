namespace Accel.Benchmarks.Paired;

/// <summary>One measured quantity of a case (a latency, a rate, a cost per request), with one value per mode and round.</summary>
internal sealed record Metric(string Id, string Title, string Unit, bool HigherIsBetter)
{
    public Dictionary<string, List<double>> Rounds { get; } = new();
}

/// <summary>A case measured slice by slice: one slice runs one mode for a short while and returns its metrics.</summary>
internal sealed record PairedCase(string Name, Metric[] Metrics, Func<string, Task<IReadOnlyDictionary<string, double>>> Slice)
{
    /// <summary>Set for a case that runs all modes at once, interleaved (<see cref="Interleave"/>): given the modes, it
    /// returns each mode's metrics for one round.</summary>
    public Func<IReadOnlyList<string>, Task<Dictionary<string, IReadOnlyDictionary<string, double>>>>? Interleaved { get; init; }

    /// <summary>A case whose round runs every mode together (the runner calls <paramref name="round"/> once a round
    /// instead of slicing); a slice of one mode is a round of that mode alone.</summary>
    public static PairedCase Interleave(string name, Metric[] metrics, Func<IReadOnlyList<string>, Task<Dictionary<string, IReadOnlyDictionary<string, double>>>> round)
        => new(name, metrics, async mode => (await round([mode]))[mode]) { Interleaved = round };

    /// <summary>This case without <paramref name="skipped"/>: that mode is not run, and its cells read "-".</summary>
    public PairedCase Without(string skipped)
    {
        IReadOnlyDictionary<string, double> none = new Dictionary<string, double>();
        Func<string, Task<IReadOnlyDictionary<string, double>>> slice = Slice;
        var cut = new PairedCase(Name, Metrics, mode => mode == skipped ? Task.FromResult(none) : slice(mode));
        if (Interleaved is not { } together)
        {
            return cut;
        }

        return cut with
        {
            Interleaved = async modes =>
            {
                var values = await together([.. modes.Where(m => m != skipped)]);
                values[skipped] = none;
                return values;
            },
        };
    }
}

/// <summary>
/// Runs cases in long-lived processes, switching modes in short slices: within a round each case runs every mode
/// twice, in palindromic order (A B C C B A), so that a drift of the machine during the round weighs on every mode
/// alike. A round's value of a mode is the mean of its two slices; its ratio to the baseline is taken within the
/// round (paired), and the report gives the median of those paired ratios with a distribution-free 95% interval.
/// An interleaved case (<see cref="PairedCase.Interleave"/>) runs its modes together instead, once a round.
/// </summary>
internal static class PairedRunner
{
    /// <summary>How many times a case's round runs at most when its requests stall (<see cref="StalledRequestException"/>).</summary>
    private const int MaxAttempts = 3;

    private static readonly List<string> s_repeated = new();

    /// <summary>The rounds repeated in this run because a request stalled, one line each, for the report.</summary>
    public static IReadOnlyList<string> Repeated => s_repeated;

    /// <param name="beforeRound">Runs before each round with the run's modes (not timed): the HTTP cases give those
    /// modes new connections.</param>
    public static async Task RunAsync(string label, IReadOnlyList<string> modes, int rounds, IReadOnlyList<PairedCase> cases, Func<IReadOnlyList<string>, Task>? beforeRound = null)
    {
        foreach (PairedCase c in cases)
        {
            // warm-up: JIT, connection pools, the kernel's caches
            await RepeatIfStalledAsync($"{label}, warm-up, {c.Name}", modes, beforeRound, async () =>
            {
                if (c.Interleaved is { } together)
                {
                    await together(modes);
                    return;
                }

                foreach (string mode in modes)
                {
                    await c.Slice(mode);
                }
            });
        }

        for (int round = 0; round < rounds; round++)
        {
            if (beforeRound is not null)
            {
                await beforeRound(modes);
            }

            foreach (PairedCase c in cases)
            {
                // Rotate the start too, so that no mode always runs first or last within a round.
                string[] order = [.. modes.Skip(round % modes.Count), .. modes.Take(round % modes.Count)];
                IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> values = null!;
                await RepeatIfStalledAsync($"{label}, round {round + 1}, {c.Name}", modes, beforeRound, async () =>
                    values = c.Interleaved is { } together ? await together(order) : await SlicedAsync(c, order));
                foreach (Metric m in c.Metrics)
                {
                    foreach (string mode in modes)
                    {
                        (m.Rounds.TryGetValue(mode, out var list) ? list : m.Rounds[mode] = new List<double>()).Add(values[mode].GetValueOrDefault(m.Id, double.NaN));
                    }
                }
            }

            Console.WriteLine($"{label}: round {round + 1}/{rounds} done");
        }
    }

    /// <summary>Runs <paramref name="part"/> (a case's round, all modes); when a request of it stalls, gives the modes
    /// new connections and runs it again, up to <see cref="MaxAttempts"/> times in all, and records it for the report.
    /// The whole round is repeated, so every mode's value still comes from the same round as the others'.</summary>
    private static async Task RepeatIfStalledAsync(string what, IReadOnlyList<string> modes, Func<IReadOnlyList<string>, Task>? renew, Func<Task> part)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await part();
                return;
            }
            catch (StalledRequestException e) when (attempt < MaxAttempts)
            {
                string line = $"{what}: {e.Message}; repeated on new connections";
                s_repeated.Add(line);
                Console.Error.WriteLine($"STALL: {line}");
                if (renew is not null)
                {
                    await renew(modes);
                }
            }
        }
    }

    /// <summary>One round of a sliced case: every mode twice, in palindromic order; a mode's value is its two slices'
    /// mean.</summary>
    private static async Task<IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>> SlicedAsync(PairedCase c, string[] order)
    {
        var sums = new Dictionary<string, Dictionary<string, double>>();
        foreach (string mode in order.Concat(order.Reverse()))
        {
            IReadOnlyDictionary<string, double> r;
            try
            {
                r = await c.Slice(mode);
            }
            catch (StalledRequestException e)
            {
                throw e.In($"mode {mode}");
            }

            var s = sums.TryGetValue(mode, out var existing) ? existing : sums[mode] = new Dictionary<string, double>();
            foreach (var (id, v) in r)
            {
                s[id] = s.GetValueOrDefault(id) + v / 2;
            }
        }

        return sums.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, double>)kv.Value);
    }

    /// <summary>Median and interval of the paired ratios mode / baseline over the rounds.</summary>
    public static MedianInterval Ratio(Metric m, string mode, string baseline)
    {
        if (!m.Rounds.TryGetValue(mode, out var a) || !m.Rounds.TryGetValue(baseline, out var b))
        {
            return MedianInterval.Of([]);
        }

        return MedianInterval.Of(a.Zip(b, (x, y) => y == 0 ? double.NaN : x / y));
    }

    public static MedianInterval Absolute(Metric m, string mode)
        => MedianInterval.Of(m.Rounds.TryGetValue(mode, out var v) ? v : []);
}
