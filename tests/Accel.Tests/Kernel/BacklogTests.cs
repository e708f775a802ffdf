using Accel.Testing;
using System.Diagnostics;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// A redirected write never blocks: without a bound, a reader that stops reading lets the kernel queue
/// without limit (KERNEL-FACTS 2). The bound moves that direction to TCP, whose flow control makes the
/// writer wait; once the reader resumes every byte arrives, in order. The tests of a writer that does not wait run twice:
/// with a verdict per send, and with windows (one verdict covering up to 64 KiB of the next sends, within the bound).
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class BacklogTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const long Bound = 4L << 20;

    /// <summary>The reader reports what it consumed (as the ASP.NET Core transport does) and the writer keeps
    /// at most 2 MiB in flight (as a flow-controlled protocol does): the direction stays redirected for 64
    /// times the bound. Without consumption tracking it would move to TCP after the first 4 MiB.</summary>
    [KernelFact]
    public async Task A_flow_controlled_stream_stays_redirected_far_past_the_bound()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        using var pair = await SocketPair.ConnectAsync(engine);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        const long total = 256L << 20; // 64 times the bound
        long consumed = 0;
        Task write = CounterStream.WriteAsync(pair.Client, total, 64 * 1024, cts.Token, window: 2L << 20, () => Interlocked.Read(ref consumed));
        string? error = await CounterStream.VerifyAsync(pair.Server, total, pause: null, cts.Token, read =>
        {
            Interlocked.Exchange(ref consumed, read);
            pair.ServerRegistration.ReportConsumed(read);
        });
        await write;

        Assert.Null(error);
        ConnectionStatistics stats = pair.ClientRegistration.GetStatistics();
        output.WriteLine($"{stats}");
        Assert.Equal(DirectionPath.Redirected, stats.Path);
        Assert.Equal(total, stats.RedirectedBytes);
    }

    /// <summary>Test: 1 GiB to a reader that stops for 5 s before reading, then reads everything.</summary>
    [KernelTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stalled_reader_cannot_make_the_kernel_queue_more_than_the_bound(bool windows)
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        using var pair = await SocketPair.ConnectAsync(engine, windows: windows);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        long baseline = TcpMemoryBytes();
        long peak = baseline;
        long peakUnread = 0;

        const long total = 1L << 30;
        var clock = Stopwatch.StartNew();
        Task write = CounterStream.WriteAsync(pair.Client, total, 64 * 1024, cts.Token);
        bool paused = false;
        Task<string?> read = CounterStream.VerifyAsync(pair.Server, total, async offset =>
        {
            // Stop for 5 s before the first read, while the direction is still redirected and the writer keeps
            // writing; sample what waits in the kernel.
            if (!paused)
            {
                paused = true;
                for (int i = 0; i < 50; i++)
                {
                    await Task.Delay(100);
                    peak = Math.Max(peak, TcpMemoryBytes());
                    peakUnread = Math.Max(peakUnread, pair.Server.Available);
                }
            }
        }, cts.Token, pair.ServerRegistration.ReportConsumed);

        string? error = await read;
        await write; // never ENOMEM: an exception here fails the test
        ConnectionStatistics stats = pair.ClientRegistration.GetStatistics();
        AccelerationStatistics process = engine.GetStatistics();
        output.WriteLine($"1 GiB in {clock.Elapsed.TotalSeconds:F1} s; redirected-but-unread peak {peakUnread >> 10} KiB (bound {Bound >> 10} KiB); host-wide TCP memory peak {(peak - baseline) >> 10} KiB above baseline (all processes: context only)");
        output.WriteLine($"writer: {stats}");

        Assert.Null(error);
        Assert.True(paused);
        AssertWithinBound(peakUnread);
        Assert.Equal(DirectionPath.Tcp, stats.Path);
        Assert.Contains("MaxRedirectedBacklogBytes", stats.TcpReason);
        Assert.Equal(total, stats.RedirectedBytes + stats.TcpBytes);
        Assert.True(process.DegradedDirections >= 1);
    }

    /// <summary>A reader that keeps reading, slowly (about 6 MB/s, 64 KiB every 10 ms), while the writer pushes as
    /// fast as it can: kernel memory stays bounded all along, the writer is throttled to the reader's pace
    /// rather than failing, and every byte arrives in order. ACCEL_SLOW_READER_SECONDS sets the length
    /// (default 10 s in CI; run it for minutes before trusting a change).</summary>
    [KernelTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_slow_reader_for_a_long_time_keeps_memory_bounded_and_loses_nothing(bool windows)
    {
        int seconds = int.TryParse(Environment.GetEnvironmentVariable("ACCEL_SLOW_READER_SECONDS"), out int s) ? s : 10;
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, windows: windows);
        long total = (long)seconds * 100 * 64 * 1024; // what the reader's pace takes in that time
        long baseline = TcpMemoryBytes(), peak = baseline, peakUnread = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds * 4 + 60));
        var clock = Stopwatch.StartNew();
        Task write = CounterStream.WriteAsync(pair.Client, total, 64 * 1024, cts.Token);
        long nextPause = 0;
        string? error = await CounterStream.VerifyAsync(pair.Server, total, async offset =>
        {
            while (offset >= nextPause)
            {
                nextPause += 64 * 1024;
                peak = Math.Max(peak, TcpMemoryBytes());
                peakUnread = Math.Max(peakUnread, pair.Server.Available);
                await Task.Delay(10);
            }
        }, cts.Token, pair.ServerRegistration.ReportConsumed);
        await write;

        output.WriteLine($"{total >> 20} MiB in {clock.Elapsed.TotalSeconds:F1} s ({total / clock.Elapsed.TotalSeconds / 1e6:F1} MB/s); redirected-but-unread peak {peakUnread >> 10} KiB (bound {Bound >> 10} KiB); host-wide TCP memory peak {(peak - baseline) >> 10} KiB above baseline (all processes: context only)");
        output.WriteLine($"writer: {pair.ClientRegistration.GetStatistics()}");
        Assert.Null(error);
        AssertWithinBound(peakUnread);
        Assert.Equal(total, pair.ClientRegistration.GetStatistics().RedirectedBytes + pair.ClientRegistration.GetStatistics().TcpBytes);
    }

    /// <summary>
    /// The kernel memory the fast path adds for a connection is its redirected-but-unread bytes. On a socket in
    /// the map, FIONREAD (<see cref="System.Net.Sockets.Socket.Available"/>) reports exactly those (KERNEL-FACTS 8),
    /// so they are measured per connection, whatever else the host is doing. (Bytes that moved to TCP are
    /// bounded by TCP's own buffers.) One message of slack: the check runs before each send.
    /// </summary>
    private static void AssertWithinBound(long peakUnread)
    {
        Assert.True(peakUnread > 0, "no redirected bytes were ever waiting: the measurement saw nothing");
        Assert.True(peakUnread <= Bound + (64 << 10), $"{peakUnread >> 10} KiB of redirected bytes waited unread, more than the bound ({Bound >> 10} KiB).");
    }

    /// <summary>The "mem" of the TCP line of /proc/net/sockstat (pages), in bytes: all TCP memory of the host.</summary>
    private static long TcpMemoryBytes()
    {
        string line = File.ReadLines("/proc/net/sockstat").First(l => l.StartsWith("TCP:", StringComparison.Ordinal));
        string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(f[Array.IndexOf(f, "mem") + 1]) * Environment.SystemPageSize;
    }
}
