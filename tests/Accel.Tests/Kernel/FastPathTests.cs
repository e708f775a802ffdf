using Accel.Testing;
using System.Net;
using System.Net.Sockets;
using Accel.Native.Abi;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

[Collection(KernelCollection.Name)]
public sealed class FastPathTests(KernelFixture fixture)
{
    [KernelFact]
    public void Engine_starts_enabled_and_pins_owner_only_objects()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        string dir = engine.Kernel!.Store.Directory;
        Assert.Equal(Path.Combine(fixture.Environment.PinRoot, "accel", Native.Loading.EmbeddedObjects.Accel.Abi), dir);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        Assert.Contains(Path.Combine(dir, "accel_sockhash"), Directory.GetFiles(dir));
    }

    [KernelFact]
    public async Task Prepared_pair_is_redirected_both_ways_and_counted()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.True(engine.PrepareListener(listener));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.True(engine.PrepareConnect(client));
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();

        var c = engine.Register(client);
        var s = engine.Register(server);
        Assert.Equal(RegistrationOutcome.Registered, c.Outcome);
        Assert.Equal(RegistrationOutcome.Registered, s.Outcome);

        byte[] ping = "hello over the fast path"u8.ToArray();
        await client.SendAsync(ping);
        byte[] buf = new byte[ping.Length];
        Assert.Equal(ping.Length, await server.ReceiveAsync(buf));
        Assert.Equal(ping, buf);
        await server.SendAsync(buf);
        Assert.Equal(ping.Length, await client.ReceiveAsync(buf));

        var cs = c.GetStatistics();
        var ss = s.GetStatistics();
        Assert.Equal(DirectionPath.Redirected, cs.Path);
        Assert.Equal(DirectionPath.Redirected, ss.Path);
        Assert.Equal(ping.Length, cs.RedirectedBytes);
        Assert.Equal(0, cs.TcpBytes);
        var stats = engine.GetStatistics();
        Assert.True(stats.RegisteredSockets >= 2);
        Assert.True(stats.RedirectedBytes >= 2 * ping.Length);
    }

    /// <summary>
    /// A peer that closes leaves the map, so the other side's next send finds nothing to redirect to and goes through
    /// TCP. That is the connection's end, not a direction that lost the fast path: the socket's own figures say why,
    /// and the process's count of degraded directions (which a backlog bound does move, see BacklogTests) stays where
    /// it was. Until the program told the two apart, such a send counted as degraded: benchmark runs showed a few, 17 B
    /// through TCP each, most likely Kestrel's GOAWAY after its client had closed.
    /// </summary>
    [KernelFact]
    public async Task A_send_after_the_peer_closed_goes_through_TCP_and_is_not_counted_as_degraded()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        using var pair = await SocketPair.ConnectAsync(engine);
        const string text = "redirected, then the peer closes";
        byte[] message = System.Text.Encoding.ASCII.GetBytes(text);
        await pair.Client.SendAsync(message);
        Assert.Equal(text, await ReceiveTextAsync(pair.Server, message.Length));
        long degraded = engine.GetStatistics().DegradedDirections;

        pair.Server.Close(); // close() takes the socket out of the map
        Assert.Equal(message.Length, await pair.Client.SendAsync(message)); // accepted; the closed peer answers with a reset

        ConnectionStatistics stats = pair.ClientRegistration.GetStatistics();
        Assert.Equal(DirectionPath.Tcp, stats.Path);
        Assert.Equal("the peer closed, and so left the fast path", stats.TcpReason);
        Assert.NotNull(stats.LeftFastPathAt);
        Assert.Equal(message.Length, stats.RedirectedBytes);
        Assert.Equal(message.Length, stats.TcpBytes);
        Assert.Equal(degraded, engine.GetStatistics().DegradedDirections);
    }

    /// <summary>
    /// A socket stays in the sockhash until close(), also after its connection has ended. When a new
    /// connection reuses the same 4-tuple (loopback reuses them within a second), a key made of the 4-tuple
    /// alone would point the new client's bytes at the old, still open server socket. Keys carry the
    /// connection's initial sequence numbers, so the new connection has keys of its own.
    /// </summary>
    [KernelFact]
    public async Task A_socket_connected_again_after_a_disconnect_sends_only_to_its_new_peer()
    {
        // Socket.Disconnect(reuseSocket: true) and a second connection, which .NET allows to another endpoint only.
        // Whatever .NET does underneath, the old peer must not see a byte of the new connection. (It connects
        // again through a new kernel socket, not opted in, so the second connection is NotPrepared and on TCP;
        // were the kernel socket reused, sock_ops would see a new key for it and decide anew.)
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using Socket first = PreparedListener(engine), second = PreparedListener(engine);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.True(engine.PrepareConnect(client));

        await client.ConnectAsync(first.LocalEndPoint!);
        using Socket old = await first.AcceptAsync();
        Assert.Equal(RegistrationOutcome.Registered, engine.Register(client).Outcome);
        Assert.Equal(RegistrationOutcome.Registered, engine.Register(old).Outcome);
        await client.SendAsync("first"u8.ToArray());
        Assert.Equal("first", await ReceiveTextAsync(old, 5));

        client.Disconnect(reuseSocket: true);
        await client.ConnectAsync(second.LocalEndPoint!);
        using Socket fresh = await second.AcceptAsync();
        SocketRegistration again = engine.Register(client);
        engine.Register(fresh);

        byte[] payload = new byte[64 << 10];
        Random.Shared.NextBytes(payload);
        await client.SendAsync(payload);
        byte[] got = new byte[payload.Length];
        int n = 0;
        while (n < got.Length)
        {
            n += await fresh.ReceiveAsync(got.AsMemory(n));
        }

        Assert.Equal(payload, got);
        await fresh.SendAsync("back"u8.ToArray());
        Assert.Equal("back", await ReceiveTextAsync(client, 4));

        // The old server end got the disconnect, and not a byte of the new connection.
        old.ReceiveTimeout = 2000;
        byte[] rest = new byte[1024];
        int tail = 0;
        try
        {
            tail = old.Receive(rest);
        }
        catch (SocketException)
        {
            // reset by the disconnect: nothing received either
        }

        Assert.Equal(0, tail);
        Assert.Equal(RegistrationOutcome.NotPrepared, again.Outcome);
    }

    private static Socket PreparedListener(AccelerationEngine engine)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.True(engine.PrepareListener(listener));
        listener.Listen();
        return listener;
    }

    private static async Task<string> ReceiveTextAsync(Socket socket, int length)
    {
        byte[] buffer = new byte[length];
        int n = 0;
        while (n < length)
        {
            int r = await socket.ReceiveAsync(buffer.AsMemory(n));
            Assert.True(r > 0, "the connection ended early");
            n += r;
        }

        return System.Text.Encoding.ASCII.GetString(buffer);
    }

    [KernelFact]
    public async Task A_reused_4_tuple_never_redirects_into_the_previous_connections_socket()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        engine.PrepareListener(listener);
        listener.Listen();

        // First connection: exchange, then the server closes its side first (it goes to TIME_WAIT) and the
        // client closes; the server's socket object stays open, so it stays in the map.
        using var client1 = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client1.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        client1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var clientEndPoint = (IPEndPoint)client1.LocalEndPoint!;
        engine.PrepareConnect(client1);
        await client1.ConnectAsync(listener.LocalEndPoint!);
        using var server1 = await listener.AcceptAsync();
        Assert.Equal(RegistrationOutcome.Registered, engine.Register(server1).Outcome);
        await client1.SendAsync("first"u8.ToArray());
        Assert.Equal(5, await server1.ReceiveAsync(new byte[16]));
        server1.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await client1.ReceiveAsync(new byte[16]));
        client1.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await server1.ReceiveAsync(new byte[16]));
        client1.Close();

        // Second connection on the very same 4-tuple.
        using var client2 = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client2.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        client2.Bind(clientEndPoint);
        engine.PrepareConnect(client2);
        await client2.ConnectAsync(listener.LocalEndPoint!);
        using var server2 = await listener.AcceptAsync();
        Assert.Equal(clientEndPoint, server2.RemoteEndPoint);
        var s2 = engine.Register(server2);
        var c2 = engine.Register(client2);
        Assert.Equal(RegistrationOutcome.Registered, s2.Outcome);

        byte[] second = "second connection"u8.ToArray();
        await client2.SendAsync(second);
        byte[] buf = new byte[64];
        int n = await server2.ReceiveAsync(buf);
        Assert.Equal(second, buf[..n]);
        Assert.Equal(DirectionPath.Redirected, c2.GetStatistics().Path);
        Assert.Equal(0, server1.Available);
    }

    /// <summary>
    /// Keys leave out the accepting end's address (NAT may rewrite it on the way), so two live connections from one
    /// client address and port to two servers, which connect() allows, share every part of their keys but the two
    /// initial sequence numbers. Those must keep them apart: each server gets its own client's bytes and no other.
    /// </summary>
    [KernelFact]
    public async Task Two_connections_from_one_client_port_to_two_servers_each_reach_only_their_own_server()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using Socket listener1 = PreparedListener(engine), listener2 = PreparedListener(engine);
        using var client1 = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var client2 = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client1.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        client2.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        client1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        client2.Bind(client1.LocalEndPoint!);
        engine.PrepareConnect(client1);
        engine.PrepareConnect(client2);
        await client1.ConnectAsync(listener1.LocalEndPoint!);
        await client2.ConnectAsync(listener2.LocalEndPoint!);
        using var server1 = await listener1.AcceptAsync();
        using var server2 = await listener2.AcceptAsync();
        Assert.Equal(server1.RemoteEndPoint, server2.RemoteEndPoint);
        var registrations = new[] { client1, client2, server1, server2 }.Select(s => engine.Register(s)).ToArray();
        Assert.All(registrations, r => Assert.Equal(RegistrationOutcome.Registered, r.Outcome));
        AccelKey key1 = engine.ReadState(client1)!.Value.Key, key2 = engine.ReadState(client2)!.Value.Key;
        Assert.Equal(key1 with { ClientSeq = 0, ServerSeq = 0 }, key2 with { ClientSeq = 0, ServerSeq = 0 });

        // Both ways, several rounds, each connection with text of its own.
        for (int round = 0; round < 20; round++)
        {
            foreach (var (client, server, name) in new[] { (client1, server1, "one"), (client2, server2, "two") })
            {
                string request = $"to server {name}, round {round:00}", reply = $"from server {name}, round {round:00}";
                await client.SendAsync(System.Text.Encoding.ASCII.GetBytes(request));
                Assert.Equal(request, await ReceiveTextAsync(server, request.Length));
                await server.SendAsync(System.Text.Encoding.ASCII.GetBytes(reply));
                Assert.Equal(reply, await ReceiveTextAsync(client, reply.Length));
            }
        }

        Assert.All(registrations, r => Assert.Equal(DirectionPath.Redirected, r.GetStatistics().Path));
        Assert.All(new[] { client1, client2, server1, server2 }, s => Assert.Equal(0, s.Available));
    }
}
