using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Accel.Internal;
using Accel.Native.Bpf;
using Accel.Native.Abi;
using Accel.Testing;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

/// <summary>
/// A socket whose peer is not in the fast path (a process on this host without the library) does not stay in the
/// socket map. In the map it could never be redirected, and every send would still go through the sk_msg program and
/// tcp_bpf's copy for a verdict of TCP: a 256 KiB HTTP response took 1.37 times as long as with no library. An accepted
/// socket is left out at establishment; a client socket leaves after its first write found no peer
/// (<see cref="SocketRegistration.TryLeaveFastPath"/>), which must never discard a redirected byte.
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

    [KernelFact]
    public async Task A_client_whose_server_is_not_in_the_fast_path_leaves_the_map_after_its_first_write()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, prepareServer: false);
        SocketRegistration client = pair.ClientRegistration;
        Assert.Equal(RegistrationOutcome.Registered, client.Outcome);
        Assert.False(client.TryLeaveFastPath()); // nothing decided before the first write

        await pair.Client.SendAsync(new byte[100]);
        Assert.Equal(100, await pair.Server.ReceiveAsync(new byte[200]));
        Assert.True(client.TryLeaveFastPath());
        Assert.True(client.HasLeft);
        AccelSockState before = engine.ReadState(pair.Client)!.Value;

        await Wire.ExchangeBothWaysAsync(pair.Client, pair.Server, size: 1 << 20);
        // Out of the map, the sk_msg program no longer runs for it: its counts stay where they were.
        Assert.Equal(before.TcpMessages, engine.ReadState(pair.Client)!.Value.TcpMessages);
        Assert.Contains("peer was not in the fast path", client.GetStatistics().TcpReason);
    }

    [KernelFact]
    public async Task A_client_in_the_fast_path_with_its_server_stays_in_it_after_its_first_write()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine);
        await Wire.ExchangeBothWaysAsync(pair.Client, pair.Server);
        Assert.False(pair.ClientRegistration.TryLeaveFastPath());
        await Wire.ExchangeBothWaysAsync(pair.Client, pair.Server);
        Assert.Equal((DirectionPath.Redirected, 0L), (pair.ClientRegistration.GetStatistics().Path, pair.ClientRegistration.GetStatistics().TcpBytes));
    }

    /// <summary>
    /// The interleaving a client's first send can race with: its redirect finds no peer, and before it removes its own
    /// accel_consumed entry the server is inserted and checks that entry, so the server stays in the map with the client
    /// in its verdict TCP. The server then redirects into the client; had the client left the map, a redirect landing
    /// between its queue check and its removal would be discarded with its psock. The test builds that state (the server
    /// taken out of the sockhash before the client's first send, put back after): the client must not leave, and every
    /// byte must arrive both ways, the server's redirected.
    /// </summary>
    [KernelFact]
    public async Task A_client_stays_in_the_map_when_its_server_joined_after_its_first_send_found_no_peer()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine);
        KernelFastPath kernel = engine.Kernel!;
        AccelKey serverKey = engine.ReadState(pair.Server)!.Value.Key, clientKey = engine.ReadState(pair.Client)!.Value.Key;
        Assert.Equal(0, kernel.RemoveFromSockhash(serverKey));

        await pair.Client.SendAsync(new byte[100]);
        Assert.Equal(100, await pair.Server.ReceiveAsync(new byte[200]));
        Assert.Contains("peer was not in the fast path", pair.ClientRegistration.GetStatistics().TcpReason);
        ulong fd = (ulong)AccelerationEngine.WithFd(pair.Server, fd => fd);
        Assert.Equal(0, kernel.Bpf.TryUpdate(kernel.Store.Map(AbiNames.SockHash), MemoryMarshal.AsBytes(new Span<AccelKey>(ref serverKey)),
            MemoryMarshal.AsBytes(new Span<ulong>(ref fd)), BpfFlags.NoExist));

        Assert.False(pair.ClientRegistration.TryLeaveFastPath());
        Assert.True(kernel.InSockhash(clientKey));
        await Wire.ExchangeBothWaysAsync(pair.Client, pair.Server, size: 1 << 20);
        Assert.Equal((DirectionPath.Redirected, 0L), (pair.ServerRegistration.GetStatistics().Path, pair.ServerRegistration.GetStatistics().TcpBytes));
        Assert.Equal(DirectionPath.Tcp, pair.ClientRegistration.GetStatistics().Path);
    }

    /// <summary>
    /// Leaving is safe once the first send has removed the client's accel_consumed entry: from then on a server inserted
    /// later leaves the map before it sends. Another thread (the process-scope read tracker) can look at the socket
    /// while that send has decided but not yet removed the entry; the socket must not leave then. The state is built by
    /// putting the entry back after the first send.
    /// </summary>
    [KernelFact]
    public async Task A_client_whose_first_send_has_not_removed_its_entry_yet_does_not_leave()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, prepareServer: false);
        KernelFastPath kernel = engine.Kernel!;
        await pair.Client.SendAsync(new byte[100]);
        Assert.Equal(100, await pair.Server.ReceiveAsync(new byte[200]));
        AccelKey key = engine.ReadState(pair.Client)!.Value.Key;
        var flow = new AccelFlow();
        Assert.Equal(0, kernel.Bpf.TryUpdate(kernel.Store.Map(AbiNames.Consumed), MemoryMarshal.AsBytes(new Span<AccelKey>(ref key)),
            MemoryMarshal.AsBytes(new Span<AccelFlow>(ref flow)), BpfFlags.NoExist));

        Assert.False(pair.ClientRegistration.TryLeaveFastPath());
        Assert.True(kernel.InSockhash(key));
        Assert.Equal(0, kernel.Bpf.TryDelete(kernel.Store.Map(AbiNames.Consumed), MemoryMarshal.AsBytes(new Span<AccelKey>(ref key))));
        Assert.True(pair.ClientRegistration.TryLeaveFastPath());
        Assert.False(kernel.InSockhash(key));
        await Wire.ExchangeBothWaysAsync(pair.Client, pair.Server, size: 1 << 20);
    }

    /// <summary>A server that writes first and closes leaves redirected bytes in the client's queue; the client's
    /// first write then finds no peer. Leaving the map now would discard those bytes with the psock, so it stays.</summary>
    [KernelFact]
    public async Task A_client_with_redirected_bytes_waiting_stays_in_the_map_and_reads_them_all()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine);
        byte[] greeting = Enumerable.Range(0, 5000).Select(i => (byte)(i * 13)).ToArray();
        await pair.Server.SendAsync(greeting);
        pair.Server.Close();
        await Task.Delay(100); // the server's close reaches the client as a FIN

        await pair.Client.SendAsync(new byte[10]);
        Assert.Contains("peer was not in the fast path", pair.ClientRegistration.GetStatistics().TcpReason);
        Assert.False(pair.ClientRegistration.TryLeaveFastPath());

        byte[] got = new byte[greeting.Length];
        int n = 0;
        while (n < got.Length)
        {
            int r = await pair.Client.ReceiveAsync(got.AsMemory(n));
            Assert.True(r > 0, $"EOF after {n} of {got.Length} bytes");
            n += r;
        }

        Assert.Equal(greeting, got);
    }

    /// <summary>
    /// The order that makes leaving safe: a client's first write that finds no peer removes the client's entry, so a
    /// server established after it is not inserted, and nothing is redirected into the client that is about to leave.
    /// TCP_DEFER_ACCEPT holds the server's establishment until the client's first bytes arrive, which makes the
    /// otherwise rare order certain: the client writes (no peer yet), and only then is the server established.
    /// </summary>
    [KernelFact]
    public async Task A_server_established_after_its_clients_first_write_stays_out_and_the_client_leaves_safely()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.SetRawSocketOption(6 /* IPPROTO_TCP */, 9 /* TCP_DEFER_ACCEPT */, BitConverter.GetBytes(5)); // seconds
        Assert.True(engine.PrepareListener(listener));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.True(engine.PrepareConnect(client));
        await client.ConnectAsync(listener.LocalEndPoint!);
        SocketRegistration c = engine.Register(client);
        Assert.Equal(RegistrationOutcome.Registered, c.Outcome);

        byte[] request = "first bytes, before the server exists"u8.ToArray();
        await client.SendAsync(request);
        using Socket server = await listener.AcceptAsync();
        SocketRegistration s = engine.Register(server);
        Assert.Equal(RegistrationOutcome.PeerNotAccelerated, s.Outcome);
        Assert.True(c.TryLeaveFastPath());

        byte[] got = new byte[request.Length];
        Assert.Equal(request.Length, await server.ReceiveAsync(got));
        Assert.Equal(request, got);
        await Wire.ExchangeBothWaysAsync(client, server, size: 1 << 20);
    }
}
