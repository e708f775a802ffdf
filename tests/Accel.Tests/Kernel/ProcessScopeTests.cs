using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Accel.Internal;
using Accel.Native.Abi;
using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// <see cref="AccelerationScope.Process"/>: every TCP socket of a process in scope joins the fast path without a
/// call to PrepareListener/PrepareConnect (as a database driver's or a raw socket's would), only that process's
/// sockets do, and the engine reports the reads nobody else reports so that long conversations stay redirected.
/// The peers are Accel.StressPeer processes that never call Prepare*.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class ProcessScopeTests(KernelFixture fixture, ITestOutputHelper output)
{
    private static int Connections => int.TryParse(Environment.GetEnvironmentVariable("ACCEL_STRESS_CONNECTIONS"), out int n) ? n : 1000;

    /// <summary>The ordering stress in this mode: both ends write pipelined sequence-numbered streams at once on
    /// every connection, every byte checked. A third process in the same cgroup that is not in scope connects too:
    /// its connections stay on TCP end to end, and lose nothing either.</summary>
    [KernelFact]
    public async Task Every_socket_of_a_process_in_scope_joins_never_reorders_and_other_processes_stay_on_TCP()
    {
        const int outsiders = 100;
        int inScope = Connections;
        // One server process per client process: client ports are reused over a run, so they cannot tell connections apart.
        using Process server = Peer.Start(fixture.Environment, [], "serve", "--scope", "process", "--prepare", "false",
            "--connections", inScope.ToString(), "--messages", "24", "--max-size", "4096");
        using Process serverOfOutsider = Peer.Start(fixture.Environment, [], "serve", "--scope", "process", "--prepare", "false",
            "--connections", outsiders.ToString(), "--messages", "24", "--max-size", "4096");
        int port = await Peer.ReadPortAsync(server), outsiderPort = await Peer.ReadPortAsync(serverOfOutsider);
        using Process scoped = Peer.Start(fixture.Environment, [], "connect", "--scope", "process", "--prepare", "false", "--ports", $"{port},{port},{port}",
            "--connections", inScope.ToString(), "--messages", "24", "--max-size", "4096", "--mixed", "false");
        using Process outside = Peer.Start(fixture.Environment, [], "connect", "--prepare", "false", "--ports", $"{outsiderPort},{outsiderPort},{outsiderPort}",
            "--connections", outsiders.ToString(), "--messages", "24", "--max-size", "4096", "--mixed", "false");

        StressPeerOutput clients = await Peer.ResultAsync(scoped);
        StressPeerOutput others = await Peer.ResultAsync(outside);
        StressPeerOutput served = await Peer.ResultAsync(server);
        StressPeerOutput servedOthers = await Peer.ResultAsync(serverOfOutsider);
        output.WriteLine($"in scope: {clients.Statistics}; its server: {served.Statistics}; outside: {others.Statistics}; its server: {servedOthers.Statistics}");

        var all = served.Results.Concat(clients.Results).Concat(others.Results).Concat(servedOthers.Results).ToList();
        Assert.Empty(all.Where(r => r.Error is not null).Select(r => $"{r.ClientPort}: {r.Error}").Take(10));
        Assert.Equal((inScope, outsiders), (served.Results.Length, servedOthers.Results.Length));
        // In scope at both ends: inserted by the kernel, redirected end to end.
        Assert.All(clients.Results, r => Assert.Equal(("Registered", "Redirected", 0L), (r.Outcome, r.Path, r.TcpBytes)));
        Assert.All(served.Results, r => Assert.Equal(("Registered", "Redirected", 0L), (r.Outcome, r.Path, r.TcpBytes)));
        // The outsider is in the same cgroup, but not in scope: never opted in, so its server ends, which are, stay out of
        // the map (they could only pay the sk_msg path for a verdict of TCP).
        Assert.All(others.Results, r => Assert.Equal(("NotPrepared", 0L), (r.Outcome, r.RedirectedBytes)));
        Assert.All(servedOthers.Results, r => Assert.Equal(("PeerNotAccelerated", "Tcp", 0L), (r.Outcome, r.Path, r.RedirectedBytes)));
        Assert.Equal(outsiders, servedOthers.Statistics.SkippedPlainPeers);
    }

    /// <summary>Echo server (in a pid namespace of its own, as in a container) and client that never report their reads:
    /// 64 MiB each way on each connection, sixteen times the bound, in request/response rounds. Without the tracker each
    /// direction would move to TCP after its first 4 MiB.</summary>
    [KernelFact]
    public async Task Reads_nobody_reports_are_tracked_so_long_conversations_stay_redirected()
    {
        const int connections = 4, rounds = 1024, size = 64 << 10;
        using Process server = Peer.Start(fixture.Environment, ["unshare", "--pid", "--fork"], "echo", "--scope", "process", "--prepare", "false",
            "--connections", connections.ToString());
        int port = await Peer.ReadPortAsync(server);
        using Process client = Peer.Start(fixture.Environment, [], "ping", "--scope", "process", "--prepare", "false", "--ports", port.ToString(),
            "--connections", connections.ToString(), "--messages", rounds.ToString(), "--max-size", size.ToString());

        StressPeerOutput pinged = await Peer.ResultAsync(client);
        StressPeerOutput echoed = await Peer.ResultAsync(server);
        output.WriteLine($"client: {pinged.Statistics}; server: {echoed.Statistics}");
        foreach (StressPeerOutput side in new[] { pinged, echoed })
        {
            Assert.Empty(side.Results.Where(r => r.Error is not null).Select(r => $"{r.ClientPort}: {r.Error}"));
            Assert.All(side.Results, r => Assert.Equal(("Registered", "Redirected", (long)rounds * size, 0L), (r.Outcome, r.Path, r.RedirectedBytes, r.TcpBytes)));
            Assert.Equal(0, side.Statistics.DegradedDirections);
            Assert.True(side.Statistics.TrackedReports > 0, "the tracker reported nothing: the bound was never near, and the test proves nothing");
        }
    }

    /// <summary>In this process: sockets made while the engine is in scope join; once it is disposed, new sockets do not.</summary>
    [KernelFact]
    public async Task Scope_ends_with_the_engine()
    {
        var options = fixture.Environment.Options();
        options.Scope = AccelerationScope.Process;
        using (var engine = AccelerationEngine.Start(options))
        {
            Assert.True(engine.IsEnabled, engine.Status.Message);
            Assert.Contains("process scope", engine.Status.Message);
            var (client, server) = await ConnectPlainAsync();
            using (client)
            using (server)
            {
                Assert.Equal(RegistrationOutcome.Registered, engine.Register(client).Outcome);
                Assert.Equal(RegistrationOutcome.Registered, engine.Register(server).Outcome);
                await Wire.ExchangeBothWaysAsync(client, server);
                Assert.Equal(DirectionPath.Redirected, engine.Register(client).GetStatistics().Path);
            }

            Assert.Single(ScopeEntries(engine));
        }

        using var after = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.Empty(ScopeEntries(after));
        var (c2, s2) = await ConnectPlainAsync();
        using (c2)
        using (s2)
        {
            Assert.Equal(RegistrationOutcome.NotPrepared, after.Register(c2).Outcome);
        }
    }

    /// <summary>A server's socket is inserted at the handshake, but has a descriptor only once accepted. Accepted after
    /// the tracker looked for the insertion's sockets, and with nothing inserted after it, it still gets its slot
    /// without waiting for its writer to near the bound.</summary>
    [KernelFact]
    public async Task A_connection_accepted_after_the_tracker_looked_is_tracked()
    {
        using var engine = StartInScope();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        long before = engine.GetStatistics().TrackedSockets;
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        Assert.True(await TrackedReachesAsync(engine, before + 1), "the connecting socket never got a slot");
        await Task.Delay(50); // the tracker's pass for this insertion is over: the server socket has no descriptor yet
        using Socket server = await listener.AcceptAsync();
        Assert.True(await TrackedReachesAsync(engine, before + 2), "the accepted socket never got a slot");
        await Wire.ExchangeBothWaysAsync(client, server);
        Assert.Equal(DirectionPath.Redirected, engine.Register(server).GetStatistics().Path);
    }

    /// <summary>
    /// A socket of a process in scope whose server is on this host without the library (here: a listener whose opt-in
    /// was taken back, so that its accepted sockets never join) would pay the sk_msg path on every send for a verdict of
    /// TCP. The tracker takes it out of the map soon after its first send found no peer, by each of the ways the sk_msg
    /// program tells it: a socket that sends before the tracker gave it a slot (the block's count, then a look at every
    /// descriptor), one that sends after (its slot marked), and one that sends at once on the descriptor number of a
    /// socket that left and closed (which the tracker's cheap look for new sockets skips as seen before). Nothing is
    /// lost: the server's greeting, sent first and read only after the leave, arrives whole, and so does a megabyte each
    /// way afterwards.
    /// </summary>
    [KernelFact]
    public async Task Sockets_of_a_process_in_scope_leave_the_map_when_their_server_is_not_in_the_fast_path()
    {
        using var engine = StartInScope();
        KernelFastPath kernel = engine.Kernel!;
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.Equal(0, AccelerationEngine.WithFd(listener, fd => kernel.WriteConfig(fd, owner: 0, flags: 0, backlogKib: 0)));
        listener.Listen();
        long trackedBefore = engine.GetStatistics().TrackedSockets;
        byte[] greeting = Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray();
        var open = new List<(Socket Client, Socket Server)>();
        try
        {
            foreach (string when in new[] { "before its slot", "after its slot", "on a reused descriptor number" })
            {
                if (when == "on a reused descriptor number")
                {
                    // The first client's number (seen by the tracker) becomes free; the next socket takes the lowest.
                    open[0].Client.Dispose();
                    open[0].Server.Dispose();
                }

                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await client.ConnectAsync(listener.LocalEndPoint!);
                Socket server = await listener.AcceptAsync();
                open.Add((client, server));
                AccelSockState joined = engine.ReadState(client)!.Value;
                Assert.Equal(AccelSockState.JoinInserted, joined.Join);
                Assert.True(kernel.InSockhash(joined.Key));
                Assert.Null(engine.ReadState(server)); // never opted in: the sock_ops program left it alone
                if (when == "after its slot")
                {
                    Assert.True(await TrackedReachesAsync(engine, trackedBefore + 1), "the client never got a slot");
                }

                await server.SendAsync(greeting);
                await client.SendAsync(new byte[100]);
                Assert.Equal(100, await server.ReceiveAsync(new byte[200]));
                Assert.Contains("peer was not in the fast path", engine.Register(client).GetStatistics().TcpReason);

                var clock = Stopwatch.StartNew();
                while (kernel.InSockhash(joined.Key) && clock.Elapsed < TimeSpan.FromSeconds(5))
                {
                    await Task.Delay(10);
                }

                Assert.False(kernel.InSockhash(joined.Key), $"a client that sent {when} is still in the map {clock.Elapsed.TotalSeconds:0.0} s after its first send");
                ulong tcpMessages = engine.ReadState(client)!.Value.TcpMessages;
                byte[] got = new byte[greeting.Length];
                for (int n = 0; n < got.Length;)
                {
                    int r = await client.ReceiveAsync(got.AsMemory(n));
                    Assert.True(r > 0, $"EOF after {n} of {got.Length} bytes");
                    n += r;
                }

                Assert.Equal(greeting, got);
                await Wire.ExchangeBothWaysAsync(client, server, size: 1 << 20);
                // Out of the map, the sk_msg program no longer runs for it: its count stays where it was.
                Assert.Equal(tcpMessages, engine.ReadState(client)!.Value.TcpMessages);
            }

            Assert.Equal(3, engine.GetStatistics().LeftPlainPeers);
            Assert.True(await TrackedReachesAsync(engine, trackedBefore, atMost: true), "the slot of the socket that left was not freed");
        }
        finally
        {
            foreach (var (client, server) in open)
            {
                client.Dispose();
                server.Dispose();
            }
        }
    }

    private AccelerationEngine StartInScope()
    {
        var options = fixture.Environment.Options();
        options.Scope = AccelerationScope.Process;
        var engine = AccelerationEngine.Start(options);
        Assert.True(engine.IsEnabled, engine.Status.Message);
        return engine;
    }

    private static async Task<bool> TrackedReachesAsync(AccelerationEngine engine, long count, bool atMost = false)
    {
        var clock = Stopwatch.StartNew();
        while (atMost ? engine.GetStatistics().TrackedSockets > count : engine.GetStatistics().TrackedSockets < count)
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(5))
            {
                return false;
            }

            await Task.Delay(10);
        }

        return true;
    }

    /// <summary>A process in scope that is killed leaves its entry behind (it would opt in the sockets of the next process
    /// with its id); the next engine that opens the pin directory removes it.</summary>
    [KernelFact]
    public async Task A_killed_process_leaves_no_scope_behind()
    {
        using Process server = Peer.Start(fixture.Environment, [], "echo", "--scope", "process", "--prepare", "false", "--connections", "1");
        await Peer.ReadPortAsync(server);
        using (var during = AccelerationEngine.Start(fixture.Environment.Options()))
        {
            Assert.Single(ScopeEntries(during));
        }

        server.Kill();
        await server.WaitForExitAsync();
        using var next = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.Empty(ScopeEntries(next));
    }

    /// <summary>Scope needs the engine's programs to run for the process: one outside the cgroup they are attached to
    /// (CgroupPath set to another) still accelerates prepared sockets, and says why scope is off.</summary>
    [KernelFact]
    public async Task Scope_outside_the_attached_cgroup_is_refused_with_the_reason()
    {
        string root = KernelTestEnvironment.Cgroup2MountPoint()!;
        string outside = Path.Combine(root, $"accel-test-outside-{Guid.NewGuid():N}");
        Directory.CreateDirectory(outside);
        try
        {
            AccelerationStatus status = await Peer.StatusAsync(fixture.Environment,
                ["sh", "-c", $"echo $$ > {outside}/cgroup.procs && exec \"$@\"", "sh"], "--scope", "process");
            Assert.True(status.IsEnabled, status.Message);
            Assert.Contains("process scope unavailable", status.Message);
            Assert.Contains("not in that cgroup", status.Message);
        }
        finally
        {
            Directory.Delete(outside);
        }
    }

    private static List<byte[]> ScopeEntries(AccelerationEngine engine)
        => engine.Kernel!.Bpf.Keys(engine.Kernel.Store.Map(AbiNames.Scope), sizeof(uint)).ToList();

    private static async Task<(Socket Client, Socket Server)> ConnectPlainAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        return (client, await listener.AcceptAsync());
    }
}
