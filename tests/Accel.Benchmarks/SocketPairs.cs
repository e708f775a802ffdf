using System.Net;
using System.Net.Sockets;
using Accel.Testing;

namespace Accel.Benchmarks;

/// <summary>A connected pair over one transport, and the hook that reports consumption on the accelerated one
/// (what the ASP.NET Core transport does; without it a long run would move to TCP at the backlog bound).</summary>
internal sealed class BenchPair : IDisposable
{
    private readonly List<IDisposable> _owned = new();

    public required Socket A { get; init; }

    public required Socket B { get; init; }

    public SocketRegistration? RegistrationA { get; init; }

    public SocketRegistration? RegistrationB { get; init; }

    /// <summary>Running totals read at each end, for consumption reports across the pair's whole life.</summary>
    public long ReadA { get; set; }

    public long ReadB { get; set; }

    /// <summary>A connected pair; <paramref name="reportsConsumption"/>: both ends are opted in as readers that report
    /// (what the library's transports do), so that a paced writer waits for its reader.</summary>
    public static BenchPair Create(Transport transport, AccelerationEngine engine, bool prepareServer = true, bool reportsConsumption = false)
    {
        if (transport == Transport.Uds)
        {
            string path = Path.Combine(Path.GetTempPath(), $"accel-bench-{Guid.NewGuid():N}.sock");
            using var l = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            l.Bind(new UnixDomainSocketEndPoint(path));
            l.Listen();
            var c = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            c.Connect(new UnixDomainSocketEndPoint(path));
            var s = l.Accept();
            File.Delete(path);
            return new BenchPair { A = c, B = s };
        }

        bool accel = transport == Transport.Accelerated;
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        if (accel && prepareServer)
        {
            engine.PrepareListener(listener, reportsConsumption);
        }

        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (accel)
        {
            engine.PrepareConnect(client, reportsConsumption);
        }

        client.Connect(listener.LocalEndPoint!);
        return Connected(client, listener.Accept(), accel, engine);
    }

    /// <summary>A pair whose client is in the fast path and whose server is not (a same-host peer without the library),
    /// after one byte each way, so that the client's first send has found no peer; with <paramref name="leave"/> the
    /// client then leaves the map.</summary>
    public static BenchPair ToPlainPeer(AccelerationEngine engine, bool leave)
    {
        BenchPair pair = Create(Transport.Accelerated, engine, prepareServer: false);
        byte[] one = new byte[1];
        pair.A.Send(one);
        pair.B.Receive(one);
        pair.B.Send(one);
        pair.A.Receive(one);
        pair.ReadA = pair.ReadB = 1;
        ConnectionStatistics client = pair.RegistrationA!.GetStatistics();
        if (client.Path != DirectionPath.Tcp || (leave && !pair.RegistrationA.TryLeaveFastPath()))
        {
            throw new InvalidOperationException($"the client's first send found a peer, or it could not leave the map: {client}");
        }

        return pair;
    }

    /// <summary>A TCP pair across two network namespaces joined by veth: the client in A, the server in B
    /// (<paramref name="reportsConsumption"/>: see <see cref="Create"/>).</summary>
    public static BenchPair CreateAcross(NamespacePair net, Transport transport, AccelerationEngine engine, bool reportsConsumption = false)
    {
        bool accel = transport == Transport.Accelerated;
        using Socket listener = InNamespace.Run(net.B, () =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(IPAddress.Parse(net.AddressB), 0));
            if (accel)
            {
                engine.PrepareListener(l, reportsConsumption);
            }

            l.Listen();
            return l;
        });
        Socket client = InNamespace.Run(net.A, () =>
        {
            var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            if (accel)
            {
                engine.PrepareConnect(c, reportsConsumption);
            }

            c.Connect(listener.LocalEndPoint!);
            return c;
        });
        return Connected(client, listener.Accept(), accel, engine);
    }

    private static BenchPair Connected(Socket client, Socket server, bool accel, AccelerationEngine engine)
    {
        server.NoDelay = true;
        return new BenchPair
        {
            A = client,
            B = server,
            RegistrationA = accel ? engine.Register(client) : null,
            RegistrationB = accel ? engine.Register(server) : null,
        };
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
