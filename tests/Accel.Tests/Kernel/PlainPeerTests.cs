using Accel.Testing;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

/// <summary>
/// A socket accepted from a client that is not in the fast path (a process on this host without the library) stays out
/// of the socket map. In the map it could never be redirected, and every send would still go through the sk_msg
/// program and tcp_bpf's copy for a verdict of TCP: a 256 KiB HTTP response took 1.37 times as long as with no library.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class PlainPeerTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task A_socket_accepted_from_a_plain_client_stays_out_of_the_map_and_carries_every_byte()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, prepareClient: false);

        Assert.Equal(RegistrationOutcome.NotPrepared, pair.ClientRegistration.Outcome);
        Assert.Equal(RegistrationOutcome.PeerNotAccelerated, pair.ServerRegistration.Outcome);
        Assert.Contains("not in the fast path", pair.ServerRegistration.Detail);
        await Wire.ExchangeBothWaysAsync(pair.Client, pair.Server, size: 1 << 20);

        // The sk_msg program never ran for it: it counts every send of a socket in the map, TCP ones included.
        var state = engine.ReadState(pair.Server);
        Assert.NotNull(state);
        Assert.Equal((0ul, 0ul), (state.Value.TcpMessages, state.Value.RedirectedMessages));
        var stats = engine.GetStatistics();
        Assert.Equal((1, 0), (stats.SkippedPlainPeers, stats.RegisteredSockets));
        Assert.Equal(DirectionPath.Tcp, pair.ServerRegistration.GetStatistics().Path);
    }

    /// <summary>
    /// The check rests on an order the kernel keeps: a client runs its sock_ops callback (and is inserted) before it
    /// sends the ACK that establishes the accepted socket. Were it wrong, prepared connections made in a burst would
    /// find some server sockets skipped and their connections on TCP (never a lost byte: a socket out of the map
    /// redirects nothing and receives nothing redirected). 400 prepared connections, 50 at a time, all exchanging data.
    /// </summary>
    [KernelFact]
    public async Task Prepared_clients_connecting_in_bursts_are_never_taken_for_plain_ones()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        for (int burst = 0; burst < 8; burst++)
        {
            SocketPair[] pairs = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => SocketPair.ConnectAsync(engine))));
            try
            {
                Assert.All(pairs, p => Assert.Equal((RegistrationOutcome.Registered, RegistrationOutcome.Registered), (p.ClientRegistration.Outcome, p.ServerRegistration.Outcome)));
                await Task.WhenAll(pairs.Select(p => Wire.ExchangeBothWaysAsync(p.Client, p.Server)));
                Assert.All(pairs, p => Assert.Equal((DirectionPath.Redirected, DirectionPath.Redirected), (p.ClientRegistration.GetStatistics().Path, p.ServerRegistration.GetStatistics().Path)));
            }
            finally
            {
                foreach (SocketPair p in pairs)
                {
                    p.Dispose();
                }
            }
        }

        Assert.Equal(0, engine.GetStatistics().SkippedPlainPeers);
    }
}
