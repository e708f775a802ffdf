namespace Accel.Testing;

/// <summary>How a client socket of a stress connection is set up.</summary>
public enum StressMode
{
    /// <summary>Opted in before connect: the kernel inserts it at establishment.</summary>
    Prepared = 0,

    /// <summary>Not opted in: plain TCP.</summary>
    NotPrepared = 1,
}

/// <summary>Which server listener a stress connection goes to.</summary>
public enum StressListener
{
    /// <summary>Opted in: accepted sockets are inserted at establishment.</summary>
    Prepared = 0,

    /// <summary>Not opted in: accepted sockets use plain TCP.</summary>
    NotPrepared = 1,

    /// <summary>Opted in, with TCP_DEFER_ACCEPT: the server socket is only created (and inserted) by the
    /// client's first data segment, so the client's first send always finds its peer missing: one end
    /// joins the fast path after the other end's first write.</summary>
    PreparedDeferAccept = 2,
}

/// <summary>One end's result for one connection.</summary>
public sealed record StressEndResult(int ClientPort, StressMode Mode, StressListener Listener, string Outcome, string Path, long RedirectedBytes, long TcpBytes, string? Error);

/// <summary>What a stress peer process prints.</summary>
public sealed record StressPeerOutput(StressEndResult[] Results, AccelerationStatistics Statistics);
