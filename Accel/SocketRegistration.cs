using System.Net.Sockets;
using Accel.Native.Abi;

namespace Accel;

/// <summary>One socket's place in the fast path (or the reason it has none), and its own figures.</summary>
public sealed class SocketRegistration
{
    private readonly AccelerationEngine _engine;
    private readonly Socket _socket;
    private readonly AccelKey _key;
    private readonly long _reportEvery;
    private ConnectionStatistics _last;
    private long _lastReported;

    internal SocketRegistration(AccelerationEngine engine, Socket socket, RegistrationOutcome outcome, string? detail, AccelKey key = default, long reportEvery = 0)
    {
        _key = key;
        _reportEvery = reportEvery;
        _engine = engine;
        _socket = socket;
        Outcome = outcome;
        Detail = detail;
        _last = new ConnectionStatistics(outcome == RegistrationOutcome.Registered ? DirectionPath.Undecided : DirectionPath.Tcp, detail, 0, 0, 0, 0);
    }

    /// <summary>What registration did.</summary>
    public RegistrationOutcome Outcome { get; }

    /// <summary>The socket is in the fast path (its sends are redirected when its peer's is too).</summary>
    public bool IsRegistered => Outcome == RegistrationOutcome.Registered;

    /// <summary>Why the socket is not (fully) in the fast path, or <c>null</c>.</summary>
    public string? Detail { get; }

    /// <summary>
    /// Tells the fast path how many bytes the application has read from this socket so far (a running total,
    /// never decreasing). The peer's redirected writes may run at most <c>MaxRedirectedBacklogBytes</c> ahead of
    /// it; a reader that never reports lets its peer redirect that many bytes, after which the peer's
    /// direction continues on TCP. Call it from the reading code after each read: it costs nothing but a
    /// subtraction, and one syscall per quarter of the bound. The ASP.NET Core transport and HttpClient
    /// handler do this themselves. Does nothing where the kernel tracks consumption on its own.
    /// </summary>
    public void ReportConsumed(long totalBytesRead)
    {
        if (_reportEvery > 0 && totalBytesRead - _lastReported >= _reportEvery)
        {
            _lastReported = totalBytesRead;
            _engine.WriteConsumed(_key, totalBytesRead);
        }
    }

    /// <summary>This socket's figures, read from the kernel (one syscall). After the socket is closed,
    /// the last figures read are returned.</summary>
    public ConnectionStatistics GetStatistics()
    {
        if (Outcome == RegistrationOutcome.Registered && _engine.ReadConnection(_socket) is { } now)
        {
            _last = now;
        }

        return _last;
    }
}
