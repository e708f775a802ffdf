using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// The invariant that matters most: never reorder, lose or duplicate a byte. Two processes, thousands of
/// concurrent connections, both ends writing pipelined sequence-numbered messages the moment the
/// connection exists, with every way of (not) joining the fast path mixed in: both ends prepared, one end
/// not prepared, and a server end that only joins after the client's first write (TCP_DEFER_ACCEPT).
/// Every byte is checked, then EOF. Each test runs twice: with a verdict per send, and with windows (one verdict covering up
/// to 64 KiB of a socket's next sends, as the library's transports have them).
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class OrderingStressTests(KernelFixture fixture, ITestOutputHelper output)
{
    /// <summary>ACCEL_STRESS_CONNECTIONS / ACCEL_STRESS_MESSAGES raise the size for a long run.</summary>
    private static int Connections => int.TryParse(Environment.GetEnvironmentVariable("ACCEL_STRESS_CONNECTIONS"), out int n) ? n : 2000;

    private static int Messages => int.TryParse(Environment.GetEnvironmentVariable("ACCEL_STRESS_MESSAGES"), out int n) ? n : 24;

    [KernelTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Redirect_never_reorders_loses_or_duplicates_under_mixed_registration_timing(bool windows)
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        var run = await new StressServer(engine, fixture.Environment).RunAsync(Connections, Messages, maxSize: 4096, mixed: true, windows: windows);
        Report(run);

        var ends = run.Server.Select(r => (Side: "server", R: r)).Concat(run.Client.Select(r => (Side: "client", R: r))).ToList();
        Assert.Equal(Connections, run.Client.Count);
        Assert.Equal(Connections, run.Server.Count);
        Assert.Empty(ends.Where(e => e.R.Error is not null).Select(e => $"{e.Side} {e.R.ClientPort} {e.R.Mode}/{e.R.Listener}: {e.R.Error}").Take(10));

        // The mix must really exercise both paths, or the test proves nothing.
        Assert.Contains(ends, e => e.R.Path == "Redirected");
        // An end that is not prepared stays out of the fast path entirely.
        var clientsNotPrepared = run.Client.Where(r => r.Mode == StressMode.NotPrepared).ToList();
        Assert.All(clientsNotPrepared, r => Assert.Equal((nameof(RegistrationOutcome.NotPrepared), 0L), (r.Outcome, r.RedirectedBytes)));
        Assert.All(run.Server.Where(r => r.Listener == StressListener.NotPrepared), r => Assert.Equal((nameof(RegistrationOutcome.NotPrepared), 0L), (r.Outcome, r.RedirectedBytes)));
        // With TCP_DEFER_ACCEPT the server end is established only by the client's first write, which found no peer:
        // that client direction must have stayed on TCP, and the client's entry is gone, so the server end stays out of
        // the map (a client that finds no peer may leave it, and nothing may be redirected into it).
        var deferredClients = run.Client.Where(r => r.Mode == StressMode.Prepared && r.Listener == StressListener.PreparedDeferAccept).ToList();
        Assert.NotEmpty(deferredClients);
        Assert.All(deferredClients, r => Assert.Equal(("Tcp", 0L), (r.Path, r.RedirectedBytes)));
        Assert.All(run.Server.Where(r => r.Listener == StressListener.PreparedDeferAccept),
            r => Assert.Equal((nameof(RegistrationOutcome.PeerNotAccelerated), 0L), (r.Outcome, r.RedirectedBytes)));
    }

    /// <summary>
    /// The same two processes with a 64 KiB bound and four times the bytes, so that directions leave the fast path in
    /// the middle of their streams: on half the connections the writers do not pace and the readers do not report, so
    /// every redirected direction there moves to TCP after 64 KiB, with both peers still writing. On the other
    /// half the writers pace (wait for their readers) and must stay redirected throughout.
    /// </summary>
    [KernelTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Switches_to_TCP_in_the_middle_of_streams_and_paced_writers_never_reorder(bool windows)
    {
        const long bound = 64 << 10;
        var options = fixture.Environment.Options();
        options.MaxRedirectedBacklogBytes = bound;
        using var engine = AccelerationEngine.Start(options);
        Assert.True(engine.IsEnabled, engine.Status.Message);
        int connections = Math.Max(2, Connections / 2);
        var run = await new StressServer(engine, fixture.Environment).RunAsync(connections, Messages * 4, maxSize: 4096, mixed: false, pacing: true, backlogBytes: bound, windows: windows);
        Report(run);

        var ends = run.Server.Select(r => (Side: "server", R: r)).Concat(run.Client.Select(r => (Side: "client", R: r))).ToList();
        Assert.Equal(connections, run.Client.Count);
        Assert.Equal(connections, run.Server.Count);
        Assert.Empty(ends.Where(e => e.R.Error is not null).Select(e => $"{e.Side} {e.R.ClientPort}: {e.R.Error}").Take(10));

        // Directions that do not pace switched in mid-stream: some bytes redirected, the rest through TCP.
        var unpaced = ends.Where(e => !StressEnd.Paced(e.R.ClientPort)).ToList();
        var paced = ends.Where(e => StressEnd.Paced(e.R.ClientPort)).ToList();
        Assert.NotEmpty(unpaced);
        Assert.NotEmpty(paced);
        Assert.All(unpaced, e => Assert.True(e.R.Path == "Tcp" && e.R.RedirectedBytes > 0 && e.R.TcpBytes > 0, $"{e.Side} {e.R}"));
        // Paced directions carried four times the bound and more, all of it redirected.
        Assert.All(paced, e => Assert.True(e.R.Path == "Redirected" && e.R.TcpBytes == 0 && e.R.RedirectedBytes > bound, $"{e.Side} {e.R}"));
    }

    private void Report(StressServer.Run run)
    {
        foreach (var (side, results) in new[] { ("server", run.Server), ("client", run.Client) })
        {
            foreach (var g in results.GroupBy(r => (r.Mode, r.Listener, r.Outcome, r.Path)).OrderBy(g => g.Key.ToString()))
            {
                output.WriteLine($"{side,-6} client {(side == "server" ? "?" : g.Key.Mode.ToString()),-11} listener {g.Key.Listener,-19} {g.Key.Outcome,-12} {g.Key.Path,-10} {g.Count(),5} ends, {g.Sum(r => r.RedirectedBytes),10} B redirected, {g.Sum(r => r.TcpBytes),10} B tcp, {g.Count(r => r.Error is not null)} bad");
            }
        }
    }
}
