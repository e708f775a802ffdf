namespace Accel.Testing;

/// <summary>
/// Two network namespaces joined by a veth pair, standing in for two pods on one node: A has 10.213.N.1/24 and
/// fd00:213:N::1/64, B has 10.213.N.2/24 and fd00:213:N::2/64 (N differs for every pair of a test run). Only these namespaces carry test traffic. Dispose deletes both
/// namespaces, which removes the veth pair.
/// </summary>
public sealed class NamespacePair : IDisposable
{
    private NamespacePair(string id, int subnet)
    {
        A = $"accel-{id}-a";
        B = $"accel-{id}-b";
        DeviceA = $"ac{id}a";
        DeviceB = $"ac{id}b";
        Subnet = subnet;
    }

    public string A { get; }

    public string B { get; }

    /// <summary>A's end of the veth pair.</summary>
    public string DeviceA { get; }

    /// <summary>B's end of the veth pair.</summary>
    public string DeviceB { get; }

    public int Subnet { get; }

    public string AddressA => $"10.213.{Subnet}.1";

    public string AddressB => $"10.213.{Subnet}.2";

    public string Range => $"10.213.{Subnet}.0/24";

    public string AddressA6 => $"fd00:213:{Subnet:x}::1";

    public string AddressB6 => $"fd00:213:{Subnet:x}::2";

    private static int s_nextSubnet = Random.Shared.Next(0, 249);

    public static NamespacePair Create()
    {
        string id = Guid.NewGuid().ToString("N")[..6];
        // Distinct within a test run: the peer-range table of the run's pin directory keeps every pair's addresses, so a
        // pair that drew an earlier pair's subnet would find its peer already listed as "on this host".
        int subnet = Interlocked.Increment(ref s_nextSubnet) % 249 + 1;
        var pair = new NamespacePair(id, subnet);
        try
        {
            Ip($"netns add {pair.A}");
            Ip($"netns add {pair.B}");
            Ip($"link add {pair.DeviceA} netns {pair.A} type veth peer name {pair.DeviceB} netns {pair.B}");
            Ip($"-n {pair.A} addr add {pair.AddressA}/24 dev {pair.DeviceA}");
            Ip($"-n {pair.B} addr add {pair.AddressB}/24 dev {pair.DeviceB}");
            Ip($"-n {pair.A} -6 addr add {pair.AddressA6}/64 dev {pair.DeviceA} nodad"); // nodad: usable at once
            Ip($"-n {pair.B} -6 addr add {pair.AddressB6}/64 dev {pair.DeviceB} nodad");
            foreach (var (ns, dev) in new[] { (pair.A, pair.DeviceA), (pair.B, pair.DeviceB) })
            {
                Ip($"-n {ns} link set lo up");
                Ip($"-n {ns} link set {dev} up");
            }

            return pair;
        }
        catch
        {
            pair.Dispose();
            throw;
        }
    }

    /// <summary>An address that no interface has, a virtual one for <see cref="AddVirtualAddressInA"/> (like a ClusterIP).</summary>
    public string VirtualAddress => $"10.214.{Subnet}.10";

    /// <summary>Runs an nft command in namespace A; its tables go with the namespace.</summary>
    public void NftInA(string command) => Command.Run("ip", $"netns exec {A} nft {command}");

    /// <summary>Makes <see cref="VirtualAddress"/> lead from A to B, as kube-proxy makes a Kubernetes ClusterIP lead to a
    /// pod: a route to it, and DNAT of each virtual port to B's address and a port there (nftables, in A).</summary>
    public void AddVirtualAddressInA(params (int VirtualPort, int Port)[] ports)
    {
        Ip($"-n {A} route add {VirtualAddress}/32 via {AddressB}");
        NftInA("add table ip accel_vip");
        NftInA("add chain ip accel_vip out { type nat hook output priority -100 ; }");
        foreach (var (virtualPort, port) in ports)
        {
            NftInA($"add rule ip accel_vip out ip daddr {VirtualAddress} tcp dport {virtualPort} dnat to {AddressB}:{port}");
        }
    }

    public void Dispose() => Delete(A, B);

    /// <summary>Deletes the network namespaces <paramref name="namespaces"/> (with their veth ends and nftables rules),
    /// passing over any that were not created.</summary>
    internal static void Delete(params string[] namespaces)
    {
        foreach (string ns in namespaces)
        {
            try
            {
                Ip($"netns del {ns}");
            }
            catch (InvalidOperationException)
            {
                // not created
            }
        }
    }

    private static void Ip(string args) => Command.Run("ip", args);
}
