using System.Net;
using System.Net.Sockets;
using Accel.Testing;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

[Collection(KernelCollection.Name)]
public sealed class AddressFamilyTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task IPv6_loopback_pairs_are_redirected_both_ways()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, address: IPAddress.IPv6Loopback);
        await AssertRedirectedBothWays(pair.Client, pair.Server, pair.ClientRegistration, pair.ServerRegistration);
    }

    /// <summary>.NET's dual-mode sockets are AF_INET6 with IPv4-mapped addresses; an IPv4 client reaching one
    /// must meet it under the same key.</summary>
    [KernelFact]
    public async Task An_IPv4_client_and_a_dual_mode_server_are_redirected_both_ways()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var listener = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
        listener.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        engine.PrepareListener(listener);
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        engine.PrepareConnect(client);
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndPoint!).Port));
        using var server = await listener.AcceptAsync();
        Assert.True(((IPEndPoint)server.RemoteEndPoint!).Address.IsIPv4MappedToIPv6);
        await AssertRedirectedBothWays(client, server, engine.Register(client), engine.Register(server));
    }

    /// <summary>Sockets leave the map when they close, and only then: nothing leaks, nothing is deleted alive.</summary>
    [KernelFact]
    public async Task Closed_sockets_leave_the_map_and_open_ones_stay()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        int before = Wire.SockhashEntries(engine);
        var pairs = new List<SocketPair>();
        for (int i = 0; i < 50; i++)
        {
            pairs.Add(await SocketPair.ConnectAsync(engine));
        }

        Assert.Equal(before + 100, Wire.SockhashEntries(engine));
        foreach (SocketPair p in pairs)
        {
            p.Dispose();
        }

        Assert.Equal(before, Wire.SockhashEntries(engine));
    }

    private static async Task AssertRedirectedBothWays(Socket client, Socket server, SocketRegistration c, SocketRegistration s)
    {
        Assert.Equal((RegistrationOutcome.Registered, RegistrationOutcome.Registered), (c.Outcome, s.Outcome));
        await Wire.ExchangeBothWaysAsync(client, server, 5000);

        Assert.Equal((DirectionPath.Redirected, DirectionPath.Redirected), (c.GetStatistics().Path, s.GetStatistics().Path));
        Assert.Equal((5000L, 5000L), (c.GetStatistics().RedirectedBytes, s.GetStatistics().RedirectedBytes));
    }
}
