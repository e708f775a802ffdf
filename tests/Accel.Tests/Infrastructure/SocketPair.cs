using System.Net;
using System.Net.Sockets;

namespace Accel.Tests.Infrastructure;

/// <summary>A loopback connection whose two ends were (or were not) opted in before it existed.</summary>
public sealed class SocketPair : IDisposable
{
    private SocketPair(Socket client, Socket server, SocketRegistration clientRegistration, SocketRegistration serverRegistration)
    {
        Client = client;
        Server = server;
        ClientRegistration = clientRegistration;
        ServerRegistration = serverRegistration;
    }

    public Socket Client { get; }

    public Socket Server { get; }

    public SocketRegistration ClientRegistration { get; }

    public SocketRegistration ServerRegistration { get; }

    /// <param name="reportsConsumption">Both ends are opted in as readers that report what they consume.</param>
    /// <param name="onFirstUse">Both ends are registered as the transport and the HttpClient stream register theirs:
    /// what the kernel did is read only when something needs it (<see cref="AccelerationEngine.RegisterOnFirstUse"/>).</param>
    /// <param name="windows">Both ends are opted in and registered with windows, as the library's transports are
    /// (<see cref="AccelerationEngine.OptInWithWindows"/>): their writers must announce every byte they send.</param>
    public static async Task<SocketPair> ConnectAsync(AccelerationEngine engine, bool prepareClient = true, bool prepareServer = true, IPAddress? address = null, bool reportsConsumption = false, bool onFirstUse = false, bool windows = false)
    {
        address ??= IPAddress.Loopback;
        using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (address.Equals(IPAddress.IPv6Any))
        {
            listener.DualMode = true;
        }

        listener.Bind(new IPEndPoint(address, 0));
        if (prepareServer)
        {
            Assert.True(windows ? engine.OptInWithWindows(listener, reportsConsumption) : engine.PrepareListener(listener, reportsConsumption));
        }

        listener.Listen();
        var client = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (prepareClient)
        {
            Assert.True(windows ? engine.OptInWithWindows(client, reportsConsumption) : engine.PrepareConnect(client, reportsConsumption));
        }

        await client.ConnectAsync(new IPEndPoint(address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : address, ((IPEndPoint)listener.LocalEndPoint!).Port));
        Socket server = await listener.AcceptAsync();
        return onFirstUse
            ? new SocketPair(client, server, engine.RegisterOnFirstUse(client, windows), engine.RegisterOnFirstUse(server, windows))
            : windows
                ? new SocketPair(client, server, engine.RegisterWithWindows(client), engine.RegisterWithWindows(server))
                : new SocketPair(client, server, engine.Register(client), engine.Register(server));
    }

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
    }
}
