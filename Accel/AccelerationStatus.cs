namespace Accel;

/// <summary>Why acceleration is off. Each value comes with a message that says what to do.</summary>
public enum AccelerationDisabledReason
{
    /// <summary>Acceleration is on.</summary>
    None,

    /// <summary>Turned off by the <c>Enabled</c> option.</summary>
    DisabledByOptions,

    /// <summary>Not Linux.</summary>
    NotLinux,

    /// <summary>The kernel lacks sockhash, sk_msg, sock_ops or socket-local storage.</summary>
    KernelUnsupported,

    /// <summary>CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN) are missing.</summary>
    MissingCapabilities,

    /// <summary>No bpffs at the pin root and it could not be mounted.</summary>
    BpffsUnavailable,

    /// <summary>Pinned objects are owned by another user or reachable by other users.</summary>
    UnsafePinnedObjects,

    /// <summary>Pinned objects do not match this library version.</summary>
    IncompatiblePinnedObjects,

    /// <summary>Creating a map or loading or attaching a program failed.</summary>
    LoadFailed,

    /// <summary>The cgroup v2 directory of the process could not be used.</summary>
    CgroupUnavailable,
}

/// <summary>Whether the fast path runs in this process, and if not, why.</summary>
/// <param name="IsEnabled">Sockets registered from now on can be accelerated.</param>
/// <param name="Reason">Why acceleration is off; <see cref="AccelerationDisabledReason.None"/> when on.</param>
/// <param name="Message">What happened and what to do, for logs and health reports; the pin directory when on.</param>
public sealed record AccelerationStatus(bool IsEnabled, AccelerationDisabledReason Reason, string Message);
