using Accel.Native.Interop;
using Accel.Testing;
using Accel.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Accel.Tests.Kernel;

[Collection(KernelCollection.Name)]
public sealed class MapFullTests(KernelFixture fixture)
{
    /// <summary>On the real kernel, with a build whose sockhash holds 4 sockets: the fifth (a client) is refused with
    /// MapFull and counted, its accepted end stays out of the map because its peer is not in it, both run on TCP and
    /// carry every byte; once entries free up, new ones join again.</summary>
    [KernelFact]
    public async Task A_full_map_leaves_new_connections_on_TCP_counted_and_recovers()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options(), NullLogger.Instance, LinuxKernel.Instance,
            ObjectVariants.WithMapSize("accel_sockhash", size: 4));
        Assert.True(engine.IsEnabled, engine.Status.Message);

        var pairs = new List<SocketPair>();
        for (int i = 0; i < 3; i++)
        {
            pairs.Add(await SocketPair.ConnectAsync(engine));
        }

        var outcomes = pairs.SelectMany(p => new[] { p.ClientRegistration.Outcome, p.ServerRegistration.Outcome }).ToList();
        Assert.Equal(4, outcomes.Count(o => o == RegistrationOutcome.Registered));
        Assert.Equal(RegistrationOutcome.MapFull, pairs[2].ClientRegistration.Outcome);
        Assert.Equal(RegistrationOutcome.PeerNotAccelerated, pairs[2].ServerRegistration.Outcome);
        Assert.Equal((1, 1), (engine.GetStatistics().RefusedSockets, engine.GetStatistics().SkippedPlainPeers));
        foreach (SocketPair p in pairs)
        {
            await p.Client.SendAsync(new byte[777]);
            byte[] got = new byte[1000];
            Assert.Equal(777, await p.Server.ReceiveAsync(got));
        }

        // The last pair (neither end in the map) used TCP and saw nothing of the fast path.
        Assert.Equal(DirectionPath.Tcp, pairs[2].ClientRegistration.GetStatistics().Path);

        foreach (SocketPair p in pairs)
        {
            p.Dispose();
        }

        using var again = await SocketPair.ConnectAsync(engine);
        Assert.Equal((RegistrationOutcome.Registered, RegistrationOutcome.Registered), (again.ClientRegistration.Outcome, again.ServerRegistration.Outcome));
        await again.Client.SendAsync(new byte[10]);
        Assert.Equal(10, await again.Server.ReceiveAsync(new byte[100]));
        Assert.Equal(DirectionPath.Redirected, again.ClientRegistration.GetStatistics().Path);
    }

    /// <summary>The host-wide table of same-host addresses (an LPM trie, 1,024 entries) can fill up with the
    /// addresses of containers that are gone. A service that cannot publish its addresses says so and runs;
    /// loopback, which needs no entry, is still redirected.</summary>
    [KernelFact]
    public async Task A_full_table_of_host_addresses_is_logged_and_loopback_still_redirects()
    {
        var logger = new RecordingLogger();
        using var engine = AccelerationEngine.Start(fixture.Environment.Options(), logger, LinuxKernel.Instance,
            ObjectVariants.WithMapSize("accel_local_prefixes", size: 1));   // this host has at least 127.0.0.1 and ::1
        Assert.True(engine.IsEnabled, engine.Status.Message);
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("is full", StringComparison.Ordinal));

        using var pair = await SocketPair.ConnectAsync(engine);
        await pair.Client.SendAsync(new byte[10]);
        Assert.Equal(10, await pair.Server.ReceiveAsync(new byte[100]));
        Assert.Equal(DirectionPath.Redirected, pair.ClientRegistration.GetStatistics().Path);
    }
}
