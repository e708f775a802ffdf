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
/// <remarks>A connection of the library's Kestrel transport or HttpClient stream has windows: one redirect verdict covers
/// up to 64 KiB of its next sends, which the kernel's program does not see one by one. Its bytes are still exact while
/// its writes succeed (the open window's are added from what the connection's writer handed to the socket; a write that
/// fails inside a window, its peer having closed, counts too), and its messages count verdicts.</remarks>
/// <param name="Path">Where this socket's sends go now.</param>
/// <param name="TcpReason">Why they go through TCP, when they do.</param>
/// <param name="RedirectedMessages">sendmsg calls whose bytes were redirected; for a connection with windows (see
/// remarks), redirect verdicts, each covering one or more consecutive sends.</param>
/// <param name="RedirectedBytes">Bytes redirected.</param>
/// <param name="TcpMessages">sendmsg calls of a registered socket that went through TCP.</param>
/// <param name="TcpBytes">Bytes of a registered socket that went through TCP.</param>
public readonly record struct ConnectionStatistics(
    DirectionPath Path,
    string? TcpReason,
    long RedirectedMessages,
    long RedirectedBytes,
    long TcpMessages,
    long TcpBytes)
{
    /// <summary>When this direction, redirected until then, moved to TCP (<see cref="TcpReason"/> says why); <c>null</c>
    /// while it has not. It moved after its first <see cref="RedirectedBytes"/> bytes, and never comes back.</summary>
    public DateTimeOffset? LeftFastPathAt { get; init; }

    /// <summary>Writes that waited for the reader to catch up (<see cref="SocketRegistration.WaitToSendAsync"/>) instead
    /// of letting this direction leave the fast path.</summary>
    public long PacedWrites { get; init; }

    /// <summary>How long those writes waited in all.</summary>
    public TimeSpan PacedTime { get; init; }
}

/// <summary>Process-wide figures since the engine started.</summary>
/// <remarks>The connections of the library's Kestrel transport and HttpClient stream have windows: one redirect verdict
/// covers up to 64 KiB of a connection's next sends. The kernel counts a window's bytes when it next decides for that
/// connection, and the connection's writer counts its last window when it closes, so <see cref="RedirectedBytes"/> lags
/// each open connection by at most one window, and is exact for a connection once it has closed (one that ends in a
/// failed send, such as an HTTP/2 GOAWAY written after its client closed, leaves up to that window uncounted; one that
/// Kestrel aborts while its last bytes are on their way counts them, at most that window). Their
/// <see cref="RedirectedMessages"/> count verdicts, not sends.</remarks>
/// <param name="RegisteredSockets">Sockets put into the fast path (by the kernel at establishment or by late registration).</param>
/// <param name="RefusedSockets">Sockets that could not be put into the fast path (map full, duplicate key, already written...).</param>
/// <param name="SkippedRemotePeers">Opted-in sockets left alone because their peer cannot be on this host.</param>
/// <param name="RedirectedMessages">sendmsg calls redirected (redirect verdicts for connections with windows: see remarks).</param>
/// <param name="RedirectedBytes">Bytes redirected (see remarks).</param>
/// <param name="TcpMessages">sendmsg calls of registered sockets that went through TCP.</param>
/// <param name="TcpBytes">Bytes of registered sockets that went through TCP.</param>
/// <param name="DegradedDirections">Directions that switched from redirect to TCP while their peer was still open: a writer
/// that does not pace got <c>MaxRedirectedBacklogBytes</c> ahead of its reader. A direction whose peer closed (an HTTP/2
/// server's GOAWAY after its client closed, say) moves to TCP too, with nothing left to redirect to, and is not counted here;
/// its <see cref="ConnectionStatistics.TcpReason"/> still says so.</param>
public readonly record struct AccelerationStatistics(
    long RegisteredSockets,
    long RefusedSockets,
    long SkippedRemotePeers,
    long RedirectedMessages,
    long RedirectedBytes,
    long TcpMessages,
    long TcpBytes,
    long DegradedDirections)
{
    /// <summary>Accepted sockets left on plain TCP because their peer is not in the fast path (a client on this host
    /// without the library, or one that did not opt in): in the socket map they would only pay the fast path's cost on
    /// every send, for no redirect (<see cref="RegistrationOutcome.PeerNotAccelerated"/>).</summary>
    public long SkippedPlainPeers { get; init; }

    /// <summary>Sockets that left the fast path after their first send found that their peer is not in it (a server on
    /// this host without the library): in the socket map they would only pay the fast path's cost on every send. An
    /// HttpClient's sockets leave at once; with <see cref="AccelerationScope.Process"/>, the engine takes out the other sockets
    /// of the process within milliseconds.</summary>
    public long LeftPlainPeers { get; init; }

    /// <summary>Writes of this process that waited for their reader to catch up, and so stayed in the fast path.</summary>
    public long PacedWrites { get; init; }

    /// <summary>With <see cref="AccelerationScope.Process"/>: sockets whose reads the engine reports for a reader the
    /// library does not see (a third-party client's), at this moment.</summary>
    public long TrackedSockets { get; init; }

    /// <summary>With <see cref="AccelerationScope.Process"/>: reads reported for such readers since start; each let a
    /// writer near its backlog bound stay in the fast path.</summary>
    public long TrackedReports { get; init; }
}
