namespace Accel;

/// <summary>Where one socket's outgoing bytes go.</summary>
public enum DirectionPath
{
    /// <summary>Nothing sent yet: the decision is made at the first send.</summary>
    Undecided,

    /// <summary>Redirected straight into the peer socket.</summary>
    Redirected,

    /// <summary>Through the TCP/IP stack.</summary>
    Tcp,
}

/// <summary>One socket's own figures: what it sent, and how. The peer socket holds the other direction.</summary>
/// <param name="Path">Where this socket's sends go now.</param>
/// <param name="TcpReason">Why they go through TCP, when they do.</param>
/// <param name="RedirectedMessages">sendmsg calls whose bytes were redirected.</param>
/// <param name="RedirectedBytes">Bytes redirected.</param>
/// <param name="TcpMessages">sendmsg calls of a registered socket that went through TCP.</param>
/// <param name="TcpBytes">Bytes of a registered socket that went through TCP.</param>
public readonly record struct ConnectionStatistics(
    DirectionPath Path,
    string? TcpReason,
    long RedirectedMessages,
    long RedirectedBytes,
    long TcpMessages,
    long TcpBytes);

/// <summary>Process-wide figures since the engine started.</summary>
/// <param name="RegisteredSockets">Sockets put into the fast path (by the kernel at establishment or by late registration).</param>
/// <param name="RefusedSockets">Sockets that could not be put into the fast path (map full, duplicate key, already written...).</param>
/// <param name="SkippedRemotePeers">Opted-in sockets left alone because their peer cannot be on this host.</param>
/// <param name="RedirectedMessages">sendmsg calls redirected.</param>
/// <param name="RedirectedBytes">Bytes redirected.</param>
/// <param name="TcpMessages">sendmsg calls of registered sockets that went through TCP.</param>
/// <param name="TcpBytes">Bytes of registered sockets that went through TCP.</param>
/// <param name="DegradedDirections">Directions that switched from redirect to TCP (peer gone).</param>
public readonly record struct AccelerationStatistics(
    long RegisteredSockets,
    long RefusedSockets,
    long SkippedRemotePeers,
    long RedirectedMessages,
    long RedirectedBytes,
    long TcpMessages,
    long TcpBytes,
    long DegradedDirections);
