namespace Accel.Testing;

/// <summary>
/// Two "pods" routed through a "node", as a Kubernetes node's pods are: namespaces <see cref="A"/> and <see cref="B"/>,
/// each joined by a veth pair to namespace <see cref="Node"/>, which forwards between them (10.215.N.0/30 for A,
/// 10.215.N.4/30 for B). <see cref="AddServiceInNode"/> makes a virtual address lead to B the way kube-proxy makes a
/// ClusterIP lead to a pod: DNAT in the node's prerouting, which the pods' own namespaces never see. Only these
/// namespaces carry test traffic; Dispose deletes all three, which removes the veth pairs and the node's rules.
/// </summary>
public sealed class RoutedNamespaces : IDisposable
{
    private static int s_nextSubnet = Random.Shared.Next(0, 249);

    private RoutedNamespaces(string id, int subnet)
    {
        A = $"accel-{id}-a";
        B = $"accel-{id}-b";
        Node = $"accel-{id}-n";
        Subnet = subnet;
    }

    public string A { get; }

    public string B { get; }

    public string Node { get; }

    public string AddressA => $"10.215.{Subnet}.2";

    public string AddressB => $"10.215.{Subnet}.6";

    /// <summary>An address that no interface has, which the node rewrites to B's (like a ClusterIP).</summary>
    public string ServiceAddress => $"10.216.{Subnet}.10";

    private int Subnet { get; }

    public static RoutedNamespaces Create()
    {
        string id = Guid.NewGuid().ToString("N")[..6];
        var net = new RoutedNamespaces(id, Interlocked.Increment(ref s_nextSubnet) % 249 + 1);
        try
        {
            foreach (string ns in new[] { net.A, net.B, net.Node })
            {
                Ip($"netns add {ns}");
                Ip($"-n {ns} link set lo up");
            }

            foreach (var (pod, side, podAddress, nodeAddress) in new[] { (net.A, "a", net.AddressA, $"10.215.{net.Subnet}.1"), (net.B, "b", net.AddressB, $"10.215.{net.Subnet}.5") })
            {
                string podEnd = $"ac{id}{side}", nodeEnd = $"ac{id}n{side}";
                Ip($"link add {podEnd} netns {pod} type veth peer name {nodeEnd} netns {net.Node}");
                Ip($"-n {pod} addr add {podAddress}/30 dev {podEnd}");
                Ip($"-n {net.Node} addr add {nodeAddress}/30 dev {nodeEnd}");
                Ip($"-n {pod} link set {podEnd} up");
                Ip($"-n {net.Node} link set {nodeEnd} up");
                Ip($"-n {pod} route add default via {nodeAddress}");
            }

            Ip($"netns exec {net.Node} sysctl -q -w net.ipv4.ip_forward=1");
            return net;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>DNAT in the node's prerouting: <see cref="ServiceAddress"/>:<paramref name="servicePort"/> leads to
    /// <see cref="AddressB"/>:<paramref name="port"/>.</summary>
    public void AddServiceInNode(int servicePort, int port)
    {
        Nft("add table ip accel_svc");
        Nft("add chain ip accel_svc pre { type nat hook prerouting priority -100 ; }");
        Nft($"add rule ip accel_svc pre ip daddr {ServiceAddress} tcp dport {servicePort} dnat to {AddressB}:{port}");
    }

    public void Dispose() => NamespacePair.Delete(A, B, Node);

    private void Nft(string command) => Ip($"netns exec {Node} nft {command}");

    private static void Ip(string args) => Command.Run("ip", args);
}
