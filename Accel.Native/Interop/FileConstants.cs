namespace Accel.Native.Interop;

/// <summary>The open(2) and flock(2) values that <see cref="IKernel.Open"/> and <see cref="IKernel.Flock"/> take.</summary>
internal static class FileConstants
{
    /// <summary>O_DIRECTORY (x86-64, arm64).</summary>
    public const int OpenDirectory = 0x10000;

    public const int LockExclusive = 2;

    /// <summary>LOCK_NB: fail with EWOULDBLOCK instead of waiting.</summary>
    public const int LockNonBlocking = 4;

    public const int Unlock = 8;
}
