namespace Accel.Native.Probe;

/// <summary>Why the fast path cannot run. Each value has a message that says what to do.</summary>
public enum Unavailability
{
    /// <summary>Nothing is missing.</summary>
    None,

    /// <summary>Not Linux.</summary>
    NotLinux,

    /// <summary>The kernel lacks sockhash, sk_msg, sock_ops or socket-local storage.</summary>
    KernelUnsupported,

    /// <summary>CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN) are missing.</summary>
    MissingCapabilities,

    /// <summary>No bpffs at the pin root, and it could not be mounted.</summary>
    BpffsUnavailable,

    /// <summary>The pin directory or a pinned object is owned by someone else or reachable by other users.</summary>
    UnsafePinnedObjects,

    /// <summary>A pinned object does not match what this library version expects.</summary>
    IncompatiblePinnedObjects,

    /// <summary>A map could not be created or a program could not be loaded or attached.</summary>
    LoadFailed,

    /// <summary>The process's cgroup v2 directory could not be found or used.</summary>
    CgroupUnavailable,
}

/// <summary>The fast path cannot run; <see cref="Kind"/> says why and the message what to do.</summary>
public sealed class UnavailableException(Unavailability kind, string message, Exception? inner = null)
    : Exception(message, inner)
{
    /// <summary>The category of the problem.</summary>
    public Unavailability Kind { get; } = kind;
}
