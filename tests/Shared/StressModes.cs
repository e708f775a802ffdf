namespace Accel.Testing;

/// <summary>How each end of a stress connection joins the fast path.</summary>
public enum StressMode
{
    /// <summary>Opted in before connect/listen: the kernel inserts it at establishment.</summary>
    Prepared = 0,

    /// <summary>Not opted in; registered from user space right after connect/accept, before its first write.</summary>
    LateBeforeFirstWrite = 1,

    /// <summary>Not opted in; writes its first message through TCP, then registers (must stay on TCP).</summary>
    LateAfterFirstWrite = 2,
}

/// <summary>One end's result for one connection.</summary>
public sealed record StressEndResult(int ClientPort, StressMode Mode, string Outcome, string Path, long RedirectedBytes, long TcpBytes, string? Error);
