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
    /// <summary>Takes the first free block below <paramref name="blocks"/>; null when every block is held (or the
    /// directories cannot be made).</summary>
    public static (KernelFd Lease, int Block)? TryTake(IKernel kernel, string directory, int blocks)
    {
        for (int block = 0; block < blocks; block++)
        {
            string path = Path.Combine(directory, "tracker_" + block.ToString(CultureInfo.InvariantCulture));
            if (InstanceLeases.TryLock(kernel, path) is { } lease)
            {
                return (lease, block);
            }
        }

        return null;
    }
}
