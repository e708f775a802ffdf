namespace Accel.AspNetCore;

/// <summary>
/// Acceleration of one connection, on <c>ConnectionContext.Features</c> and <c>HttpContext.Features</c> of
/// connections accepted by the accelerated Kestrel transport.
/// </summary>
/// <remarks>
/// What the kernel did with the connection's socket is read (one syscall) the first time <see cref="IsAccelerated"/>,
/// <see cref="Outcome"/>, <see cref="Detail"/> or <see cref="Outbound"/> is asked for, or when the transport needs it, not
/// when the connection is accepted: a connection that carries one small request pays nothing for it. Ask while the
/// connection is open (during a request); asked first after it closed, they say
/// <see cref="RegistrationOutcome.NotEstablished"/>.
/// </remarks>
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

    /// <summary>Bytes the application has consumed from this connection, counted while the connection may be in the
    /// fast path: one found out of it (its client does not use the library) is counted for its first request only, as the
    /// transport then passes its reads straight through.</summary>
    long InboundBytes { get; }
}
