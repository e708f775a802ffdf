using System.Globalization;
using Accel.Native.Interop;

namespace Accel.Native.Pinning;

/// <summary>
/// Which engine instances sharing a pin directory are still running, across processes, containers and pid
/// namespaces. Each instance holds an exclusive flock on a directory of its own, <c>instance_&lt;owner&gt;</c>, for
/// its lifetime; the kernel drops the lock when the process ends, however it ends (SIGKILL, OOM kill). An
/// instance directory whose lock can be taken therefore belongs to an instance that is gone. Creating and
/// sweeping happen under the pin directory's own lock, so a sweeper never sees a directory before its lock.
/// </summary>
internal static class InstanceLeases
{
    /// <summary>How every instance directory's name begins.</summary>
    public const string Prefix = "instance_";
    private const int LockExclusiveNonBlocking = FileConstants.LockExclusive | FileConstants.LockNonBlocking;

    /// <summary>Creates and locks this instance's directory; the lease lasts until the handle is closed.
    /// Null when it cannot be made (then nobody will sweep this instance's entries but itself).</summary>
    public static KernelFd? Hold(IKernel kernel, string directory, ulong owner)
    {
        return TryLock(kernel, PathOf(directory, owner));
    }

    /// <summary>Creates (owner-only) and locks the directory <paramref name="path"/>; the lock lasts until the handle is
    /// closed or the process ends. Null when it cannot be made or another holder has it.</summary>
    public static KernelFd? TryLock(IKernel kernel, string path)
    {
        if (!OwnerOnlyDirectory.TryCreate(path))
        {
            return null;
        }

        int fd = kernel.Open(path, FileConstants.OpenDirectory);
        if (fd < 0)
        {
            return null;
        }

        var lease = new KernelFd(kernel, fd);
        if (kernel.Flock(fd, LockExclusiveNonBlocking) < 0)
        {
            lease.Dispose();
            return null;
        }

        return lease;
    }

    /// <summary>Ends this instance's lease and removes its directory.</summary>
    public static void Release(KernelFd lease, string directory, ulong owner)
    {
        lease.Dispose();
        TryRemove(PathOf(directory, owner));
    }

    /// <summary>The owners of instance directories whose lock is free: instances that are gone. For each,
    /// <paramref name="forget"/> runs first, then its directory is removed (so a failure in between leaves
    /// it to the next sweep).</summary>
    public static int SweepEnded(IKernel kernel, string directory, Action<ulong> forget)
    {
        string[] leases;
        try
        {
            leases = System.IO.Directory.GetDirectories(directory, Prefix + "*");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }

        int ended = 0;
        foreach (string path in leases)
        {
            if (!ulong.TryParse(Path.GetFileName(path).AsSpan(Prefix.Length), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong owner))
            {
                continue;
            }

            if (IsEnded(kernel, path))
            {
                forget(owner);
                TryRemove(path);
                ended++;
            }
        }

        return ended;
    }

    /// <summary>Whether the instance <paramref name="owner"/> is known to have ended: its directory exists and
    /// nobody holds its lock. An instance without a directory (another build of the library) is not.</summary>
    public static bool IsEnded(IKernel kernel, string directory, ulong owner) => IsEnded(kernel, PathOf(directory, owner));

    /// <summary>Whether the instance whose directory is <paramref name="path"/> has ended: nobody holds its lock.</summary>
    public static bool IsEnded(IKernel kernel, string path)
    {
        int fd = kernel.Open(path, FileConstants.OpenDirectory);
        if (fd < 0)
        {
            return false;
        }

        // Our own lock, if taken, goes with this descriptor.
        using var probe = new KernelFd(kernel, fd);
        return kernel.Flock(fd, LockExclusiveNonBlocking) == 0;
    }

    /// <summary>The directory of the instance <paramref name="owner"/>.</summary>
    public static string PathOf(string directory, ulong owner) =>
        Path.Combine(directory, Prefix + owner.ToString("x16", CultureInfo.InvariantCulture));

    private static void TryRemove(string path)
    {
        try
        {
            System.IO.Directory.Delete(path, recursive: true); // with what the instance kept in it (PeerClaims)
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Already removed by a sweeper, or not ours to remove: either way not this instance's concern.
        }
    }
}
