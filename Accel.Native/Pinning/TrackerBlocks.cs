using System.Globalization;
using Accel.Native.Interop;

namespace Accel.Native.Pinning;

/// <summary>
/// Which block of the shared tracking array (<c>accel_track</c>) belongs to which running engine. An engine whose
/// tracker reports reads for the sockets of its process holds an exclusive flock on <c>tracker_&lt;n&gt;</c> in the
/// pin directory for as long as it runs; the kernel drops the lock when the process ends, however it ends, and the
/// block is free for the next engine. The directories stay: there are only as many as there are blocks.
/// </summary>
internal static class TrackerBlocks
{
    private const int LockExclusiveNonBlocking = FileConstants.LockExclusive | FileConstants.LockNonBlocking;

    /// <summary>Takes the first free block below <paramref name="blocks"/>; null when every block is held (or the
    /// directories cannot be made).</summary>
    public static (KernelFd Lease, int Block)? TryTake(IKernel kernel, string directory, int blocks)
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }

        for (int block = 0; block < blocks; block++)
        {
            string path = Path.Combine(directory, "tracker_" + block.ToString(CultureInfo.InvariantCulture));
            try
            {
                System.IO.Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }

            int fd = kernel.Open(path, FileConstants.OpenDirectory);
            if (fd < 0)
            {
                continue;
            }

            var lease = new KernelFd(kernel, fd);
            if (kernel.Flock(fd, LockExclusiveNonBlocking) == 0)
            {
                return (lease, block);
            }

            lease.Dispose();
        }

        return null;
    }
}
