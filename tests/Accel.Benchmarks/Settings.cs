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

    public int HttpSequential(int size) => (Quick ? 1 : 3) * (size <= 16 * 1024 ? 1500 : 300);

    public TimeSpan HttpThroughputDuration => TimeSpan.FromSeconds(Quick ? 3 : 10);

    public static readonly int[] Sizes = [64, 1024, 16 * 1024, 256 * 1024];
}

/// <summary>The three ways two processes on one host can talk.</summary>
internal enum Transport
{
    Tcp,
    Accelerated,
    Uds,
}
