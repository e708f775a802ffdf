namespace Accel;

/// <summary>Which of the process's TCP sockets may join the fast path.</summary>
public enum AccelerationScope
{
    /// <summary>Only sockets opted in before they connect or listen: those of the ASP.NET Core transport and
    /// HttpClient handler, and any passed to <see cref="AccelerationEngine.PrepareListener"/> or
    /// <see cref="AccelerationEngine.PrepareConnect"/>. The default.</summary>
    PreparedSockets = 0,

    /// <summary>Every TCP socket this process creates from the engine's start on, whoever creates it: database
    /// drivers, cache and broker clients, gRPC channels, raw sockets, and every connection their listeners accept.
    /// The kernel opts each in as it is created (a cgroup <c>sock_create</c> program, scoped to this process id);
    /// other processes in the same cgroup are not affected. A connection is redirected only when its peer is in the
    /// fast path too; any other stays on plain TCP. The engine reports the reads of sockets whose reader it does not
    /// see, so that their writers stay on the fast path beyond the backlog bound.</summary>
    Process = 1,
}
