namespace Accel.Benchmarks;

/// <summary>How much to measure. <paramref name="Quick"/>: only what issue 11's target check needs (the raw round
/// trips; the HTTP sequential and 64-way cases in the modes the targets compare; syscalls, the CPU split and the
/// sk_msg program's cost), a few minutes on 2 cores, for judging a change to the data path. Otherwise every case and
/// mode (mixed deployments, large downloads and uploads, the YARP gateway, gRPC, the Redis protocol, bulk, namespaces, memory,
/// the read tracker), about 23 minutes. Both run the same rounds, so a quick run's cells resolve what the full run's
/// do.</summary>
internal sealed record Settings(bool Quick)
{
    /// <summary>Repetitions of the whole-repetition socket figures (bulk, namespaces), across transports.</summary>
    public int Repetitions => 5;

    public int RoundTrips(int size) => size switch
    {
        <= 1024 => 3000,
        <= 16 * 1024 => 1500,
        _ => 300,
    };

    public long BulkBytes => 256L << 20;

    /// <summary>Rounds of paired slices: every mode twice per round and case (ABBA), ratios taken within a round.
    /// 16 puts the 95% interval of the median between the 4th and 13th of the sorted paired ratios.
    /// <c>ACCEL_BENCH_ROUNDS</c> sets another number, for a focused run (<c>--concurrent-only</c> and the like) that
    /// has to resolve a smaller difference: the interval narrows about as the square root of the rounds.</summary>
    public int Rounds { get; } = RoundsFromEnvironment();

    /// <summary>16, or <c>ACCEL_BENCH_ROUNDS</c>: at least 6, the fewest whose median has a 95% interval
    /// (<see cref="Paired.MedianInterval"/>; with 5, the smallest and largest ratio cover it only 94% of the time).</summary>
    private static int RoundsFromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable("ACCEL_BENCH_ROUNDS");
        if (string.IsNullOrEmpty(value))
        {
            return 16;
        }

        return int.TryParse(value, out int rounds) && rounds >= 6
            ? rounds
            : throw new ArgumentException($"ACCEL_BENCH_ROUNDS={value}: give a whole number of rounds, 6 or more (fewer have no 95% interval for their median).");
    }

    /// <summary>Sequential requests of each mode in one round, interleaved with the other modes' requests (a few
    /// hundred milliseconds of each mode).</summary>
    public int SequentialRequests(int size) => size <= 16 * 1024 ? 800 : 200;

    /// <summary>Length of one throughput slice.</summary>
    public TimeSpan SliceDuration => TimeSpan.FromMilliseconds(300);

    /// <summary>The size of one large download (a slice makes several; <see cref="LargeSlice"/>).</summary>
    public long LargeBody => 64L << 20;

    /// <summary>Least length of one large-download slice: as many downloads as fit (see the case).</summary>
    public TimeSpan LargeSlice => TimeSpan.FromMilliseconds(400);

    /// <summary>Round trips in one raw-socket slice.</summary>
    public int RoundTripsPerSlice(int size) => size <= 1024 ? 1000 : 400;

    /// <summary>GETs of one sequential slice of the Redis-protocol case (about 100 ms).</summary>
    public int RedisSequentialGets => 1000;

    /// <summary>GETs of one throughput slice of the Redis-protocol case (64 in flight, about 200 ms).</summary>
    public int RedisParallelGets => 16000;

    public static readonly int[] Sizes = [64, 1024, 16 * 1024, 256 * 1024];
}

/// <summary>The three ways two processes on one host can talk.</summary>
internal enum Transport
{
    Tcp,
    Accelerated,
    Uds,
}
