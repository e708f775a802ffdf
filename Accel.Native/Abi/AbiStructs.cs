using System.Runtime.InteropServices;

namespace Accel.Native.Abi;

// Managed mirrors of bpf/accel_abi.h. AbiLayoutTests checks their sizes against the object's map definitions.

/// <summary>struct accel_key: one end of one connection, named by what both ends see alike even through NAT of the
/// server's address: the connecting end's address (IPv6 form) and port (host order), which end, the netns cookie
/// (loopback only) and both initial sequence numbers. Only accel_sockops writes keys.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct AccelKey
{
    public fixed byte ClientIp[16];
    public uint ClientPort;

    /// <summary>1 for the accepting end's socket, 0 for the connecting end's.</summary>
    public uint ServerEnd;
    public ulong NetnsCookie;
    public uint ClientSeq;
    public uint ServerSeq;

    /// <summary>The key of the connection's other end.</summary>
    public readonly AccelKey Peer => this with { ServerEnd = ServerEnd ^ 1 };
}

/// <summary>struct accel_sock_config: written by user space, inherited by accepted sockets.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct AccelSockConfig
{
    public const uint OptIn = 1;

    /// <summary>The socket's reader reports what it consumed; its peer's writer may pace instead of leaving the fast path.</summary>
    public const uint Reports = 2;

    /// <summary>A probe: accel_whoami writes the binding process's tgid (initial pid namespace) into <see cref="Tgid"/>.</summary>
    public const uint WhoAmI = 4;

    /// <summary>A redirect verdict covers up to <see cref="AccelSockState.WindowBytes"/> of the socket's next sends, so
    /// that the sk_msg program runs once per window; for writers that count what they send (the library's transports),
    /// which settle a window still open at their end.</summary>
    public const uint Window = 8;

    public ulong Owner;
    public uint Flags;
    public uint BacklogKib;
    public uint Tracker;
    public uint Tgid;
}

/// <summary>struct accel_sock_state: the sticky decision and the socket's own figures, written by the programs.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct AccelSockState
{
    public const uint VerdictUndecided = 0, VerdictRedirect = 1, VerdictTcp = 2;
    public const uint ReasonNone = 0, ReasonPeerAbsent = 1, ReasonNotInserted = 2, ReasonPeerGone = 3, ReasonBacklog = 4;
    public const uint JoinNone = 0, JoinInserted = 1, JoinSkippedRemote = 2, JoinSkippedEarly = 3, JoinFailed = 4, JoinSkippedPlainPeer = 5;

    /// <summary>ACCEL_WINDOW_BYTES: the most one redirect verdict of a socket with <see cref="AccelSockConfig.Window"/>
    /// covers.</summary>
    public const uint WindowBytes = 65536;

    public ulong Owner;
    public uint Verdict;
    public uint Reason;
    public uint Flags;

    /// <summary>Bytes of the open window beyond the send that opened it, not yet in <see cref="RedirectedBytes"/>.</summary>
    public uint Window;
    public ulong RedirectedMessages;
    public ulong RedirectedBytes;
    public ulong TcpMessages;
    public ulong TcpBytes;
    public AccelKey Key;
    public uint BacklogLimit;
    public uint Join;
    public int InsertError;
    public uint Reserved2;
    public ulong LeftNs;
    public ulong ConsumedSeen;
    public AccelKey Peer;
}

/// <summary>The value of accel_consumed: a reader's running total, and whether that reader reports at all.</summary>
internal static class AccelConsumed
{
    public const ulong Reports = 1UL << 63;
    public const ulong Mask = Reports - 1;
}

/// <summary>struct accel_flow, the value of accel_consumed: what one reader consumed, what its writer published
/// near the bound, and the reader's tracker slot.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct AccelFlow
{
    public ulong Consumed;
    public ulong Sent;
    public uint Tracker;
    public uint Slot;
    public uint Tag;
    public uint Reserved;
}

/// <summary>The layout of accel_track (see accel_abi.h): per block a count of writers waiting for a slot, a count of
/// first sends that found no peer from sockets without a slot, a count of writes to the block's slots, and slots holding
/// <c>tag &lt;&lt; 48 | sent</c> for one tracked reader each (or a mark: closed, peer absent).</summary>
internal static class AccelTrack
{
    public const int Block = 1024;
    public const int Blocks = 256;
    public const int Waiting = 0;
    public const int Changed = 1;
    public const int Absent = 2;
    public const int FirstSlot = 3;
    public const ulong SentMask = (1UL << 48) - 1;
    public const ulong Closed = 1UL << 47;
    public const ulong PeerAbsent = Closed | 1;
}

/// <summary>struct accel_owner_stats: per engine instance, per CPU.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct AccelOwnerStats
{
    public ulong RedirectedMessages;
    public ulong RedirectedBytes;
    public ulong TcpMessages;
    public ulong TcpBytes;
    public ulong Inserted;
    public ulong InsertFailed;
    public ulong SkippedRemote;
    public ulong Degraded;
    public ulong SkippedPlainPeer;

    public void Add(in AccelOwnerStats o)
    {
        RedirectedMessages += o.RedirectedMessages;
        RedirectedBytes += o.RedirectedBytes;
        TcpMessages += o.TcpMessages;
        TcpBytes += o.TcpBytes;
        Inserted += o.Inserted;
        InsertFailed += o.InsertFailed;
        SkippedRemote += o.SkippedRemote;
        Degraded += o.Degraded;
        SkippedPlainPeer += o.SkippedPlainPeer;
    }
}

/// <summary>struct accel_service: which engine instance (owner) is which process.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct AccelService
{
    public fixed byte Name[32];
    public fixed byte Host[64];
    public uint Pid;
    public uint Reserved;
}

/// <summary>struct accel_prefix: an LPM trie key over IPv6 (IPv4 as ::ffff:0:0/96 + prefix).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct AccelPrefix
{
    public uint PrefixLength;
    public fixed byte Address[16];
}

/// <summary>Names of the maps and programs in the object.</summary>
internal static class AbiNames
{
    public const string SockHash = "accel_sockhash";
    public const string Config = "accel_config";
    public const string State = "accel_state";
    public const string Owners = "accel_owners";
    public const string LocalPrefixes = "accel_local_prefixes";
    public const string Consumed = "accel_consumed";
    public const string Services = "accel_services";
    public const string Track = "accel_track";
    public const string Scope = "accel_scope";
    public const string SockCreateProgram = "accel_sock_create";
    public const string WhoAmIProgram = "accel_whoami";
    public const string SockOpsProgram = "accel_sockops";
    public const string MessageProgram = "accel_msg";
}
