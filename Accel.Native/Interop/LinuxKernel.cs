using System.Runtime.InteropServices;
using System.Text;

namespace Accel.Native.Interop;

/// <summary>The real kernel: libc's syscall wrappers, nothing else.</summary>
internal sealed unsafe partial class LinuxKernel : IKernel
{
    public static readonly LinuxKernel Instance = new();

    private const int O_CLOEXEC = 0x80000;
    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_BASIC_STATS = 0x7ff;

    private static readonly long BpfSyscallNumber = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        _ => -1,
    };

    private static readonly long GetdentsSyscallNumber = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 217,
        Architecture.Arm64 => 61,
        _ => -1,
    };

    private LinuxKernel()
    {
    }

    public int Bpf(BpfCommand command, Span<byte> attr)
    {
        if (BpfSyscallNumber < 0)
        {
            return -Errno.ENOSYS;
        }

        fixed (byte* p = attr)
        {
            long r = syscall(BpfSyscallNumber, (long)command, p, attr.Length);
            return r < 0 ? -Marshal.GetLastPInvokeError() : checked((int)r);
        }
    }

    public int Close(int fd) => close(fd) < 0 ? -Marshal.GetLastPInvokeError() : 0;

    public int GetSockOpt(int socketFd, int level, int name, Span<byte> value, out int length)
    {
        int len = value.Length;
        fixed (byte* p = value)
        {
            int r = getsockopt(socketFd, level, name, p, &len);
            length = len;
            return r < 0 ? -Marshal.GetLastPInvokeError() : 0;
        }
    }

    public int Open(string path, int flags)
    {
        int r = open(path, flags | O_CLOEXEC, 0);
        return r < 0 ? -Marshal.GetLastPInvokeError() : r;
    }

    public int Flock(int fd, int operation) => flock(fd, operation) < 0 ? -Marshal.GetLastPInvokeError() : 0;

    public int Stat(string path, out FileFacts facts)
    {
        // struct statx is 256 bytes and the same on every architecture.
        byte* buf = stackalloc byte[256];
        new Span<byte>(buf, 256).Clear();
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buf) < 0)
        {
            facts = default;
            return -Marshal.GetLastPInvokeError();
        }

        uint uid = *(uint*)(buf + 20);
        ushort mode = *(ushort*)(buf + 28);
        byte* fsbuf = stackalloc byte[120];
        long magic = 0;
        if (statfs(path, fsbuf) == 0)
        {
            magic = *(long*)fsbuf;
        }

        facts = new FileFacts(uid, mode, magic, (mode & 0xF000) == 0x4000, *(ulong*)(buf + 32));
        return 0;
    }

    public uint EffectiveUserId => geteuid();

    public int Mount(string source, string target, string fsType, ulong flags, string? data)
        => mount(source, target, fsType, (nuint)flags, data) < 0 ? -Marshal.GetLastPInvokeError() : 0;

    public int MapShared(int fd, long length, out nint address)
    {
        const int ProtReadWrite = 0x1 | 0x2, MapSharedFlag = 0x01;
        nint r = mmap(0, (nuint)length, ProtReadWrite, MapSharedFlag, fd, 0);
        if (r == -1)
        {
            address = 0;
            return -Marshal.GetLastPInvokeError();
        }

        address = r;
        return 0;
    }

    public int Unmap(nint address, long length) => munmap(address, (nuint)length) < 0 ? -Marshal.GetLastPInvokeError() : 0;

    public int BytesToRead(int socketFd, out int count)
    {
        const ulong Fionread = 0x541B;
        int value = 0;
        int r = ioctl(socketFd, Fionread, &value);
        count = value;
        return r < 0 ? -Marshal.GetLastPInvokeError() : 0;
    }

    public int OpenDescriptors(List<int> fds)
    {
        fds.Clear();
        if (GetdentsSyscallNumber < 0)
        {
            return -Errno.ENOSYS;
        }

        int dir = open("/proc/self/fd", O_CLOEXEC, 0);
        if (dir < 0)
        {
            return -Marshal.GetLastPInvokeError();
        }

        try
        {
            const int Size = 32 * 1024;
            byte* buffer = stackalloc byte[Size];
            while (true)
            {
                long n = syscall(GetdentsSyscallNumber, dir, buffer, Size);
                if (n < 0)
                {
                    return -Marshal.GetLastPInvokeError();
                }

                if (n == 0)
                {
                    return fds.Count;
                }

                // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name (NUL-terminated).
                for (long offset = 0; offset < n; offset += *(ushort*)(buffer + offset + 16))
                {
                    byte* name = buffer + offset + 19;
                    int fd = 0;
                    bool number = *name != 0;
                    for (; *name != 0; name++)
                    {
                        number &= *name is >= (byte)'0' and <= (byte)'9';
                        fd = fd * 10 + (*name - '0');
                    }

                    if (number && fd != dir)
                    {
                        fds.Add(fd);
                    }
                }
            }
        }
        finally
        {
            close(dir);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(nint address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, int* value);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long command, void* attr, long size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, void* value, int* length);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, void* buffer);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statfs(string path, void* buffer);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string fsType, nuint flags, string? data);
}
