using Accel.Native.Abi;

namespace Accel.Internal;

/// <summary>What the kernel did with a socket when its connection was established, as its accel_state entry says: the
/// outcome, why it is not in the fast path, and the socket's key in the map (when it is).</summary>
internal sealed class JoinResult(RegistrationOutcome outcome, string? detail, AccelKey key = default)
{
    public RegistrationOutcome Outcome { get; } = outcome;

    public string? Detail { get; } = detail;

    public AccelKey Key { get; } = key;

    public bool IsRegistered => Outcome == RegistrationOutcome.Registered;
}
