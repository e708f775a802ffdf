using Accel.Native.Abi;
using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// Windows (<see cref="AccelerationEngine.OptInWithWindows"/>, as the library's transports opt their sockets in): one
/// redirect verdict covers up to 64 KiB of a socket's next sends, and the kernel reuses it without running the program.
/// The program does not see the sends inside a window, so it counts a window when it next runs, and the writer settles the
/// last one (<see cref="SocketRegistration.SettleWindow"/>): the figures stay exact. Ordering and the backlog bound with
/// windows: <see cref="OrderingStressTests"/> and <see cref="BacklogTests"/>.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class WindowTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelFact]
    public async Task One_verdict_covers_many_sends_and_the_figures_stay_exact()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true, windows: true);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        AccelerationStatistics before = engine.GetStatistics();
        const long total = 8L << 20;
        var random = new Random(5);
        int sends = 0;

        Task write = CounterStream.WriteAsync(pair.Client, total, 4096, cts.Token, pacer: pair.ClientRegistration,
            nextSize: () => { sends++; return random.Next(1, 4097); });
        string? error = await CounterStream.VerifyAsync(pair.Server, total, pause: null, cts.Token, pair.ServerRegistration.ReportConsumed);
        await write;
        Assert.Null(error);

        AccelSockState kernel = engine.ReadState(pair.Client)!.Value;
        ConnectionStatistics live = pair.ClientRegistration.GetStatistics();
        output.WriteLine($"{sends} sends, {total} B; the kernel counted {kernel.RedirectedBytes} B in {kernel.RedirectedMessages} verdicts, window open {kernel.Window} B; the connection's figures: {live}");

        // The program ran once per window, not once per send (about 32 sends of 2 KiB each; windows shrink only near the bound).
        Assert.True(kernel.RedirectedMessages > 0 && kernel.RedirectedMessages * 8 < (ulong)sends, $"{kernel.RedirectedMessages} verdicts for {sends} sends");
        // What the kernel has not counted yet lies in the open window, and the connection's figures add it from what the
        // writer announced.
        Assert.True((long)kernel.RedirectedBytes <= total && (long)kernel.RedirectedBytes + kernel.Window >= total, $"{kernel.RedirectedBytes} + {kernel.Window}");
        Assert.Equal((DirectionPath.Redirected, total, 0L), (live.Path, live.RedirectedBytes, live.TcpBytes));

        // The process's figures have the last window once the writer settles it, and keep it after the close.
        Assert.Equal((long)kernel.RedirectedBytes, engine.GetStatistics().RedirectedBytes - before.RedirectedBytes);
        pair.ClientRegistration.SettleWindow();
        pair.ClientRegistration.SettleWindow(); // once only
        Assert.Equal(total, engine.GetStatistics().RedirectedBytes - before.RedirectedBytes);
        pair.Dispose();
        AccelerationStatistics after = engine.GetStatistics();
        Assert.Equal((total, 0L), (after.RedirectedBytes - before.RedirectedBytes, after.TcpBytes - before.TcpBytes));
        Assert.Equal((DirectionPath.Redirected, total), (pair.ClientRegistration.GetStatistics().Path, pair.ClientRegistration.GetStatistics().RedirectedBytes));
    }

    /// <summary>A window's target is fixed when it opens: a send inside it after the peer closed finds no peer to queue into
    /// and fails at once (EPIPE), where a verdict per send would put it on TCP, to be answered by a reset. Nothing is queued
    /// for a socket that will never read it. (The HttpClient stream counts such a send as done, as TCP takes it:
    /// <c>IdleCloseRaceTests</c>.)</summary>
    [KernelFact]
    public async Task A_send_inside_a_window_after_the_peer_closed_fails_at_once()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true, windows: true);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await CounterStream.WriteAsync(pair.Client, 100, 100, cts.Token, pacer: pair.ClientRegistration);
        Assert.Null(await CounterStream.VerifyAsync(pair.Server, 100, pause: null, cts.Token));
        Assert.True(engine.ReadState(pair.Client)!.Value.Window > 0, "no window opened");
        pair.Server.Dispose();

        var e = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(async () =>
            await CounterStream.WriteAsync(pair.Client, 200, 100, cts.Token, pacer: pair.ClientRegistration));
        output.WriteLine($"{e.SocketErrorCode}: {e.Message}; the writer's figures: {pair.ClientRegistration.GetStatistics()}");
        Assert.Equal(System.Net.Sockets.SocketError.Shutdown, e.SocketErrorCode); // EPIPE
        pair.Client.Dispose();
    }

    [KernelFact]
    public async Task A_socket_without_windows_is_decided_per_send()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        using var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        const long total = 1L << 20;
        Task write = CounterStream.WriteAsync(pair.Client, total, 1024, cts.Token, pacer: pair.ClientRegistration);
        Assert.Null(await CounterStream.VerifyAsync(pair.Server, total, pause: null, cts.Token, pair.ServerRegistration.ReportConsumed));
        await write;

        AccelSockState kernel = engine.ReadState(pair.Client)!.Value;
        Assert.Equal((1024UL, (ulong)total, 0U), (kernel.RedirectedMessages, kernel.RedirectedBytes, kernel.Window));
    }
}
