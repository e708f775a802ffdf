namespace Accel.Benchmarks;

/// <summary>How much to measure: quick mode fits a few minutes on 2 cores.</summary>
internal sealed record Settings(bool Quick)
{
    /// <summary>Repetitions of every case, interleaved across transports so that drift and noise show.</summary>
    public int Repetitions => Quick ? 5 : 9;

    public int RoundTrips(int size) => (Quick ? 1 : 4) * size switch
    {
        <= 1024 => 3000,
        <= 16 * 1024 => 1500,
        _ => 300,
    };

    public long BulkBytes => Quick ? 256L << 20 : 1L << 30;


    /// <summary>Rounds of paired slices: every mode twice per round and case (ABBA), ratios taken within a round.</summary>
    public int Rounds => Quick ? 16 : 40;

    /// <summary>Sequential requests of each mode in one round, interleaved with the other modes' requests (a few
    /// hundred milliseconds of each mode).</summary>
    public int SequentialRequests(int size) => size <= 16 * 1024 ? 800 : 200;

    /// <summary>Length of one throughput slice.</summary>
    public TimeSpan SliceDuration => TimeSpan.FromMilliseconds(300);

    /// <summary>The size of one large download (a slice makes several; <see cref="LargeSlice"/>).</summary>
    public long LargeBody => Quick ? 64L << 20 : 1L << 30;

    /// <summary>Least length of one large-download slice: as many downloads as fit (see the case).</summary>
    public TimeSpan LargeSlice => TimeSpan.FromMilliseconds(Quick ? 400 : 1500);

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
