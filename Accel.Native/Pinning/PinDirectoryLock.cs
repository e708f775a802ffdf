using Accel.Native.Interop;
using Accel.Native.Probe;

namespace Accel.Native.Pinning;

/// <summary>
/// The pin directory's exclusive flock, under which instances create, sweep and publish (one starting process at a
/// time). Disposing unlocks before it closes: a child forked meanwhile would hold a copy of the descriptor, and with it
/// the lock, until it exits or execs.
/// </summary>
internal sealed class PinDirectoryLock : IDisposable
{
    private readonly IKernel _kernel;
    private readonly KernelFd _fd;

    private PinDirectoryLock(IKernel kernel, KernelFd fd)
    {
        _kernel = kernel;
        _fd = fd;
    }

    /// <summary>Waits for the lock on <paramref name="directory"/>; throws <see cref="UnavailableException"/> when the
    /// directory cannot be opened or locked.</summary>
    public static PinDirectoryLock Take(IKernel kernel, string directory)
    {
        int fd = kernel.Open(directory, FileConstants.OpenDirectory);
        if (fd < 0)
        {
            throw new UnavailableException(Unavailability.BpffsUnavailable, $"Cannot open {directory}: {Errno.Describe(-fd)}.");
        }

        var handle = new KernelFd(kernel, fd);
        int r = kernel.Flock(fd, FileConstants.LockExclusive);
        if (r < 0)
        {
            handle.Dispose();
            throw new UnavailableException(Unavailability.BpffsUnavailable, $"Cannot lock {directory}: {Errno.Describe(-r)}.");
        }

        return new PinDirectoryLock(kernel, handle);
    }

    public void Dispose()
    {
        _kernel.Flock(_fd.Value, FileConstants.Unlock);
        _fd.Dispose();
    }
}
