using System.Net;

namespace Accel;

/// <summary>Options of the <see cref="AccelerationEngine"/>. Validated by <see cref="Validate"/> at start.</summary>
public class AccelerationEngineOptions
{
    /// <summary>Turns acceleration on. When <c>false</c> the engine starts disabled and every socket uses
    /// plain TCP through the same code path, so that the two can be compared. Default: <c>true</c>.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The bpffs mount under which the host-wide objects are pinned, in <c>accel/{abi}/</c>.
    /// Services that should share the fast path must use the same root. Default: <c>/sys/fs/bpf</c>.</summary>
    public string PinRoot { get; set; } = "/sys/fs/bpf";

    /// <summary>Mount bpffs at <see cref="PinRoot"/> when nothing is mounted there and the process may.
    /// Default: <c>true</c>.</summary>
    public bool MountBpffsIfMissing { get; set; } = true;

    /// <summary>The cgroup v2 directory whose sockets the kernel may insert into the fast path
    /// (only sockets this library opted in are inserted). Default: <c>null</c>, the process's own cgroup.</summary>
    public string? CgroupPath { get; set; }

    /// <summary>Address ranges (CIDR, e.g. <c>10.244.3.0/24</c>) of peers that may run on this host, such as
    /// the node's pod range. Loopback and, with <see cref="IncludeHostAddresses"/>, this host's own
    /// addresses always count. Sockets whose peer is outside are left alone: they would pay the sk_msg
    /// path for nothing. Default: empty.</summary>
    public IList<string> SameHostPeerRanges { get; } = new List<string>();

    /// <summary>The most redirected bytes the kernel may hold unread for one connection direction. A reader
    /// that falls this far behind moves that direction to plain TCP for the rest of the connection, where
    /// TCP's flow control makes the writer wait (redirected writes never block, so without a bound a
    /// stalled reader could make the kernel queue without limit). Between 64 KiB and 1 GiB.
    /// Default: 4 MiB.</summary>
    public long MaxRedirectedBacklogBytes { get; set; } = 4L << 20;

    /// <summary>The name under which this process appears in the host-wide view (<see cref="AccelerationHostState"/>),
    /// beside its host name (the container's or pod's, in a container). At most 31 bytes of UTF-8 are kept.
    /// Default: <c>null</c>, the entry assembly's name (the process name when there is none).</summary>
    public string? ServiceName { get; set; }

    /// <summary>Count this host's own interface addresses as possibly same-host peers. Default: <c>true</c>.</summary>
    public bool IncludeHostAddresses { get; set; } = true;

    /// <summary>Which of this process's TCP sockets may join the fast path: only those opted in
    /// (<see cref="AccelerationScope.PreparedSockets"/>, the default), or every socket the process creates
    /// (<see cref="AccelerationScope.Process"/>).</summary>
    public AccelerationScope Scope { get; set; } = AccelerationScope.PreparedSockets;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public virtual void Validate()
    {
        if (string.IsNullOrWhiteSpace(PinRoot) || !Path.IsPathRooted(PinRoot))
        {
            throw new ArgumentException($"PinRoot must be an absolute path to a bpffs mount, not '{PinRoot}'.", nameof(PinRoot));
        }

        if (CgroupPath is not null && !Path.IsPathRooted(CgroupPath))
        {
            throw new ArgumentException($"CgroupPath must be an absolute path to a cgroup v2 directory, not '{CgroupPath}'.", nameof(CgroupPath));
        }

        if (MaxRedirectedBacklogBytes is < 64 << 10 or > 1L << 30)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRedirectedBacklogBytes), MaxRedirectedBacklogBytes,
                "MaxRedirectedBacklogBytes must be between 65536 (64 KiB) and 1073741824 (1 GiB).");
        }

        if (!Enum.IsDefined(Scope))
        {
            throw new ArgumentOutOfRangeException(nameof(Scope), Scope, "Scope must be PreparedSockets or Process.");
        }

        foreach (string range in SameHostPeerRanges)
        {
            if (!IPNetwork.TryParse(range, out _))
            {
                throw new ArgumentException($"SameHostPeerRanges contains '{range}', which is not a CIDR range such as 10.244.0.0/16 or fd00::/64.", nameof(SameHostPeerRanges));
            }
        }
    }
}
