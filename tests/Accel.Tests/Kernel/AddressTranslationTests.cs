using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// Connections whose addresses nftables NAT rewrites on the way. A client that calls a virtual address rewritten to its
/// server's (DNAT, as kube-proxy does for a Kubernetes ClusterIP) is in the fast path, because a connection's key holds
/// only what both ends see alike, wherever the rewriting happens: in the client's own namespace, or in a node's that
/// routes between two pods. A client whose own address is rewritten (SNAT, masquerade) cannot be paired with its
/// server and uses TCP. Every byte is checked both ways.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class AddressTranslationTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const int Connections = 100;
    private const int VirtualPort = 80;

    [KernelFact(Tools = "ip:iproute2 nft:nftables")]
    public async Task A_client_calling_a_virtual_address_that_NAT_rewrites_to_its_server_shares_the_fast_path()
    {
        using var net = NamespacePair.Create();
        var (server, client) = await RunAsync(net.A, net.B, net.AddressB, net.VirtualAddress, clientRanges: $"{net.VirtualAddress}/32",
            port => net.AddVirtualAddressInA((VirtualPort, port)));

        Assert.All(client.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Redirected"), (r.Outcome, r.Path)));
        Assert.All(server.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Redirected"), (r.Outcome, r.Path)));
        Assert.Equal(0, server.Statistics.TcpBytes + client.Statistics.TcpBytes);
        Assert.Equal(server.Results.Sum(r => r.RedirectedBytes), server.Statistics.RedirectedBytes);
        Assert.True(server.Statistics.RedirectedBytes > 0 && client.Statistics.RedirectedBytes > 0);
    }

    /// <summary>As kube-proxy does it: the pods' namespaces are routed through a node's, and the node rewrites the
    /// virtual address in its prerouting, where neither pod sees it.</summary>
    [KernelFact(Tools = "ip:iproute2 nft:nftables")]
    public async Task A_pod_calling_a_virtual_address_that_its_node_rewrites_to_another_pods_shares_the_fast_path()
    {
        using var net = RoutedNamespaces.Create();
        var (server, client) = await RunAsync(net.A, net.B, net.AddressB, net.ServiceAddress, clientRanges: $"{net.ServiceAddress}/32",
            port => net.AddServiceInNode(VirtualPort, port));

        Assert.All(client.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Redirected"), (r.Outcome, r.Path)));
        Assert.All(server.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Redirected"), (r.Outcome, r.Path)));
        Assert.Equal(0, server.Statistics.TcpBytes + client.Statistics.TcpBytes);
    }

    /// <summary>The server sees another client address than the client's own, so no key of one end names the other:
    /// the accepted end stays out of the map (its peer has no entry under the key it sees) and the client's first
    /// send finds no peer.</summary>
    [KernelFact(Tools = "ip:iproute2 nft:nftables")]
    public async Task A_client_whose_own_address_NAT_rewrites_gets_TCP_and_every_byte()
    {
        using var net = NamespacePair.Create();
        string rewritten = $"10.213.{net.Subnet}.3";
        var (server, client) = await RunAsync(net.A, net.B, net.AddressB, net.AddressB, clientRanges: "", _ =>
        {
            Command.Run("ip", $"-n {net.A} addr add {rewritten}/24 dev {net.DeviceA}");
            net.NftInA("add table ip accel_snat");
            net.NftInA("add chain ip accel_snat post { type nat hook postrouting priority 100 ; }");
            net.NftInA($"add rule ip accel_snat post ip saddr {net.AddressA} ip daddr {net.AddressB} snat to {rewritten}");
        });

        Assert.All(client.Results, r => Assert.Equal(("Tcp", 0L), (r.Path, r.RedirectedBytes)));
        Assert.All(server.Results, r => Assert.Equal(0L, r.RedirectedBytes));
        Assert.Equal(0, server.Statistics.RedirectedBytes + client.Statistics.RedirectedBytes);
    }

    /// <summary>A server on <paramref name="serverAddress"/> in namespace <paramref name="serverNs"/> and a client in
    /// <paramref name="clientNs"/> that connects to <paramref name="target"/> (port <see cref="VirtualPort"/> when that is
    /// not the server's address), after <paramref name="translate"/> (given the server's port) set up the rewriting.</summary>
    private async Task<(StressPeerOutput Server, StressPeerOutput Client)> RunAsync(string clientNs, string serverNs, string serverAddress,
        string target, string clientRanges, Action<int> translate)
    {
        string[] common = ["--connections", Connections.ToString(), "--messages", "16", "--max-size", "8192"];
        using var server = NamespacePeers.Start(serverNs, fixture.Environment, ["serve", .. common, "--accel", "true", "--address", serverAddress, "--ranges", ""]);
        int port = await Peer.ReadPortAsync(server);
        translate(port);
        int connectPort = target == serverAddress ? port : VirtualPort;
        using var client = NamespacePeers.Start(clientNs, fixture.Environment,
            ["connect", .. common, "--address", target, "--ports", $"{connectPort},{connectPort},{connectPort}", "--mixed", "false", "--ranges", clientRanges]);
        StressPeerOutput c = await Peer.ResultAsync(client);
        StressPeerOutput s = await Peer.ResultAsync(server);
        output.WriteLine($"server: {s.Statistics}");
        output.WriteLine($"client: {c.Statistics}");
        Assert.Equal(Connections, s.Results.Length);
        Assert.Equal(Connections, c.Results.Length);
        Assert.Empty(s.Results.Concat(c.Results).Where(r => r.Error is not null).Select(r => r.Error).Take(10));
        return (s, c);
    }
}
