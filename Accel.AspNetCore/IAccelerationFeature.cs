namespace Accel.AspNetCore;

/// <summary>
/// Acceleration of one connection, on <c>ConnectionContext.Features</c> and <c>HttpContext.Features</c> of
/// connections accepted by the accelerated Kestrel transport.
/// </summary>
public interface IAccelerationFeature
{
    /// <summary>The connection is in the fast path: bytes this side sends are redirected whenever the peer's
    /// socket is in the fast path too (see <see cref="Outbound"/>).</summary>
    bool IsAccelerated { get; }

    /// <summary>What registration did with the connection's socket.</summary>
    RegistrationOutcome Outcome { get; }

    /// <summary>Why the connection is not accelerated, or <c>null</c>.</summary>
    string? Detail { get; }

    /// <summary>This side's sends: redirected or through TCP, with counts. Read from the kernel on access.
    /// The other direction's split is on the peer's side; <see cref="InboundBytes"/> counts what arrived.</summary>
    ConnectionStatistics Outbound { get; }

    /// <summary>Bytes the application has consumed from this connection.</summary>
    long InboundBytes { get; }
}
