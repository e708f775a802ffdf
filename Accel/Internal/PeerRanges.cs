using System.Net;
using System.Net.Sockets;

namespace Accel.Internal;

/// <summary>The peers that may be on this host: loopback, this host's addresses, and configured ranges.
/// They are written to the kernel's LPM trie, which accel_sockops consults before inserting a socket.</summary>
internal sealed class PeerRanges
{
    private readonly List<IPNetwork> _ranges = new();

    public PeerRanges(IEnumerable<string> configured, bool includeHostAddresses)
    {
        foreach (string range in configured)
        {
            _ranges.Add(Normalize(IPNetwork.Parse(range)));
        }

        if (includeHostAddresses)
        {
            foreach (IPAddress a in HostAddresses.Read())
            {
                _ranges.Add(Normalize(new IPNetwork(a, a.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)));
            }
        }
    }

    /// <summary>Every range in IPv6 form (IPv4 ranges under ::ffff:0:0/96).</summary>
    public IReadOnlyList<IPNetwork> Ranges => _ranges;

    private static IPNetwork Normalize(IPNetwork n)
        => n.BaseAddress.AddressFamily == AddressFamily.InterNetwork
            ? new IPNetwork(n.BaseAddress.MapToIPv6(), n.PrefixLength + 96)
            : n;
}
