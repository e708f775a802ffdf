namespace Accel;

/// <summary>What <see cref="AccelerationEngine.Register"/> did with a socket. Anything but
/// <see cref="Registered"/> leaves the socket on plain TCP, which always works.</summary>
public enum RegistrationOutcome
{
    /// <summary>The socket is in the fast path; its sends are redirected when its peer is too.</summary>
    Registered,

    /// <summary>Acceleration is off in this process.</summary>
    Disabled,

    /// <summary>Not a connected IPv4 or IPv6 TCP socket.</summary>
    NotTcp,

    /// <summary>The socket was not opted in (<see cref="AccelerationEngine.PrepareConnect"/>, or
    /// <see cref="AccelerationEngine.PrepareListener"/> on its listener) before its connection was established.
    /// Only the kernel can insert a socket safely, at establishment; a connection that already exists stays on TCP.</summary>
    NotPrepared,

    /// <summary>The connection is not (or no longer) established.</summary>
    NotEstablished,

    /// <summary>The peer cannot be on this host (outside loopback, this host's addresses and the configured ranges).</summary>
    PeerNotOnHost,

    /// <summary>The socket sent data before its connection was established (TCP Fast Open): redirecting its
    /// later bytes could overtake those.</summary>
    AlreadyWritten,

    /// <summary>The host-wide socket map is full.</summary>
    MapFull,

    /// <summary>Another socket on this host holds the same key in the map.</summary>
    DuplicateKey,

    /// <summary>The kernel refused for another reason (see the detail).</summary>
    Failed,

    /// <summary>An accepted socket whose peer is not in the fast path (a client on this host without the library, or
    /// one that did not opt in). The kernel left it out of the socket map at establishment: nothing could be redirected
    /// either way, and in the map every send would pay the fast path's cost for a verdict of TCP.</summary>
    PeerNotAccelerated,
}
