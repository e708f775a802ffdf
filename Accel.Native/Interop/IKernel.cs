namespace Accel.Native.Interop;

/// <summary>
/// The one choke point through which every call into the kernel passes. The real implementation
/// is <see cref="LinuxKernel"/>; tests substitute a fake to drive error paths the kernel will not
/// produce on demand. Every method returns a non-negative result or <c>-errno</c>.
/// </summary>
internal interface IKernel
{
    /// <summary>bpf(2): <paramref name="attr"/> is the <c>union bpf_attr</c> for <paramref name="command"/>.</summary>
    int Bpf(BpfCommand command, Span<byte> attr);

    /// <summary>close(2).</summary>
    int Close(int fd);

    /// <summary>getsockopt(2) on a socket descriptor.</summary>
    int GetSockOpt(int socketFd, int level, int name, Span<byte> value, out int length);

    /// <summary>open(2) with O_CLOEXEC added.</summary>
    int Open(string path, int flags);

    /// <summary>flock(2).</summary>
    int Flock(int fd, int operation);

    /// <summary>statx(2) without following symlinks: owner, mode and file-system magic of <paramref name="path"/>.</summary>
    int Stat(string path, out FileFacts facts);

    /// <summary>geteuid(2).</summary>
    uint EffectiveUserId { get; }

    /// <summary>mount(2).</summary>
    int Mount(string source, string target, string fsType, ulong flags, string? data);

    /// <summary>mmap(2) of <paramref name="length"/> bytes of <paramref name="fd"/>, shared, read and write.</summary>
    int MapShared(int fd, long length, out nint address);

    /// <summary>munmap(2).</summary>
    int Unmap(nint address, long length);

    /// <summary>ioctl(2) FIONREAD: the bytes waiting to be read on a socket.</summary>
    int BytesToRead(int socketFd, out int count);

    /// <summary>The descriptors this process has open (getdents64(2) of /proc/self/fd, names only: nothing is stat'ed),
    /// into <paramref name="fds"/>, without the one used to list them; the count.</summary>
    int OpenDescriptors(List<int> fds);
}

/// <summary>What <see cref="IKernel.Stat"/> reports about a path.</summary>
internal readonly record struct FileFacts(uint OwnerUid, uint Mode, long FileSystemMagic, bool IsDirectory, ulong Inode);
