using System.Net.Sockets;

namespace Accel;

/// <summary>One socket's place in the fast path (or the reason it has none), and its own figures.</summary>
public sealed class SocketRegistration
{
    private readonly AccelerationEngine _engine;
    private readonly Socket _socket;
    private ConnectionStatistics _last;

    internal SocketRegistration(AccelerationEngine engine, Socket socket, RegistrationOutcome outcome, string? detail)
    {
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
