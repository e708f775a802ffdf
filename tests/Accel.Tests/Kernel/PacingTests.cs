using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// A writer that paces (<see cref="SocketRegistration.WaitToSendAsync"/>) waits for its reader at the backlog bound
/// instead of letting the kernel move its direction to TCP: the bound still holds, the direction stays redirected,
/// and the wait ends when waiting cannot help (a reader that does not report, a peer that died, cancellation).
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class PacingTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const long Bound = 4L << 20;

    [KernelFact]
    public async Task A_paced_writer_waits_for_a_stalled_reader_within_the_bound_and_stays_redirected()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        using var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        const long total = 256L << 20;
        long peakUnread = 0;
        bool stalled = false;

        var clock = Stopwatch.StartNew();
        Task write = CounterStream.WriteAsync(pair.Client, total, 64 * 1024, cts.Token, pacer: pair.ClientRegistration);
        string? error = await CounterStream.VerifyAsync(pair.Server, total, async offset =>
        {
            if (!stalled)
            {
                stalled = true; // 3 s before the first read, sampling what waits in the kernel
                for (int i = 0; i < 30; i++)
                {
                    await Task.Delay(100);
                    peakUnread = Math.Max(peakUnread, pair.Server.Available);
                }
            }
        }, cts.Token, pair.ServerRegistration.ReportConsumed);
        await write;

        ConnectionStatistics stats = pair.ClientRegistration.GetStatistics();
        output.WriteLine($"{total >> 20} MiB in {clock.Elapsed.TotalSeconds:F1} s; redirected-but-unread peak {peakUnread >> 10} KiB (bound {Bound >> 10} KiB); writer: {stats}");
        Assert.Null(error);
        Assert.True(peakUnread > Bound / 2, $"only {peakUnread >> 10} KiB waited: the writer did not reach the bound");
        Assert.True(peakUnread <= Bound, $"{peakUnread >> 10} KiB of redirected bytes waited unread, more than the bound");
        Assert.Equal((DirectionPath.Redirected, total, 0L, (DateTimeOffset?)null), (stats.Path, stats.RedirectedBytes, stats.TcpBytes, stats.LeftFastPathAt));
        Assert.True(stats.PacedWrites >= 1 && stats.PacedTime >= TimeSpan.FromSeconds(2), $"{stats.PacedWrites} paced writes, {stats.PacedTime}");
        Assert.True(engine.GetStatistics().PacedWrites >= stats.PacedWrites);
    }

    [KernelFact]
    public async Task A_paced_writer_does_not_wait_for_a_reader_that_does_not_report()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: false);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        const long total = 64L << 20;
        long peakUnread = 0;

        Task write = CounterStream.WriteAsync(pair.Client, total, 64 * 1024, cts.Token, pacer: pair.ClientRegistration);
        string? error = await CounterStream.VerifyAsync(pair.Server, total, offset =>
        {
            peakUnread = Math.Max(peakUnread, pair.Server.Available);
            return Task.CompletedTask;
        }, cts.Token); // reads everything, reports nothing
        await write;

        ConnectionStatistics stats = pair.ClientRegistration.GetStatistics();
        output.WriteLine($"writer: {stats}; redirected-but-unread peak {peakUnread >> 10} KiB");
        Assert.Null(error);
        // The kernel's bound did its work: TCP after at most the bound, and the writer never waited.
        Assert.Equal(DirectionPath.Tcp, stats.Path);
        Assert.Contains("MaxRedirectedBacklogBytes", stats.TcpReason);
        Assert.True(stats.RedirectedBytes <= Bound && stats.LeftFastPathAt is { } left && left <= DateTimeOffset.UtcNow && left > DateTimeOffset.UtcNow.AddMinutes(-2), $"{stats}");
        Assert.Equal(0, stats.PacedWrites);
        Assert.True(peakUnread <= Bound + (64 << 10));
    }

    [KernelFact]
    public async Task Cancelling_a_paced_write_ends_its_wait_at_once()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true);
        using var cts = new CancellationTokenSource();
        long written = 0;

        Task write = CounterStream.WriteAsync(pair.Client, long.MaxValue / 2, 64 * 1024, cts.Token, pacer: pair.ClientRegistration, written: n => Interlocked.Exchange(ref written, n));
        await WaitUntilStalledAsync(() => Interlocked.Read(ref written));
        Assert.False(write.IsCompleted);
        var clock = Stopwatch.StartNew();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => write);
        output.WriteLine($"waiting at {Interlocked.Read(ref written) >> 10} KiB written; canceled after {clock.ElapsedMilliseconds} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1));
        Assert.Equal(DirectionPath.Redirected, pair.ClientRegistration.GetStatistics().Path);
    }

    /// <summary>The reader is another process that connects, never reads, and is killed while the writer waits for
    /// it: the writer's wait ends and its writing fails within seconds, as on TCP; nothing hangs.</summary>
    [KernelFact]
    public async Task A_writer_waiting_for_a_peer_that_is_killed_fails_within_seconds()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        engine.PrepareListener(listener, reportsConsumption: true);
        listener.Listen();
        using Process peer = Peer.Start(fixture.Environment, [], "stall", "--ports", $"{((IPEndPoint)listener.LocalEndPoint!).Port}");
        try
        {
            using Socket server = await listener.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal("CONNECTED", await peer.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            SocketRegistration registration = engine.Register(server);
            Assert.True(registration.IsRegistered, registration.Detail);
            long written = 0;
            Task write = CounterStream.WriteAsync(server, long.MaxValue / 2, 64 * 1024, default, pacer: registration, written: n => Interlocked.Exchange(ref written, n));
            await WaitUntilStalledAsync(() => Interlocked.Read(ref written));
            Assert.False(write.IsCompleted);

            peer.Kill();
            var clock = Stopwatch.StartNew();
            Task ended = await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(30)));
            output.WriteLine($"waiting at {Interlocked.Read(ref written) >> 10} KiB written; the write ended {clock.ElapsedMilliseconds} ms after the kill: {write.Exception?.InnerException?.Message ?? write.Status.ToString()}");
            Assert.True(ended == write, "the writer still waits 30 s after its peer was killed");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the write took {clock.Elapsed} to end");
            await Assert.ThrowsAsync<SocketException>(() => write);
        }
        finally
        {
            if (!peer.HasExited)
            {
                peer.Kill();
            }
        }
    }

    /// <summary>Waits until the writer has written about the bound and then made no progress for half a second.</summary>
    private static async Task WaitUntilStalledAsync(Func<long> written)
    {
        var limit = Stopwatch.StartNew();
        long last = -1;
        while (limit.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(500);
            long now = written();
            if (now == last && now >= Bound / 2)
            {
                return;
            }

            last = now;
        }

        Assert.Fail($"the writer never stalled: {written() >> 10} KiB written");
    }
}
