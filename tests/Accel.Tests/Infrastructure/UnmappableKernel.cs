using Accel.Native.Interop;

namespace Accel.Tests.Infrastructure;

/// <summary>The real kernel, except that mmap(2) fails with <paramref name="errno"/>: a host whose memory limits, or
/// whose kernel, refuse to map a BPF array, which this machine will not do on demand.</summary>
internal sealed class UnmappableKernel(int errno) : IKernel
{
    private readonly IKernel _real = LinuxKernel.Instance;

    public int MapCalls { get; private set; }

    public uint EffectiveUserId => _real.EffectiveUserId;

    public int MapShared(int fd, long length, out nint address)
    {
        MapCalls++;
        address = 0;
        return -errno;
    }

    public int Bpf(BpfCommand command, Span<byte> attr) => _real.Bpf(command, attr);

    public int Close(int fd) => _real.Close(fd);

    public int GetSockOpt(int socketFd, int level, int name, Span<byte> value, out int length) => _real.GetSockOpt(socketFd, level, name, value, out length);

    public int Open(string path, int flags) => _real.Open(path, flags);

    public int Flock(int fd, int operation) => _real.Flock(fd, operation);

    public int Stat(string path, out FileFacts facts) => _real.Stat(path, out facts);

    public int Mount(string source, string target, string fsType, ulong flags, string? data) => _real.Mount(source, target, fsType, flags, data);

    public int Unmap(nint address, long length) => _real.Unmap(address, length);

    public int BytesToRead(int socketFd, out int count) => _real.BytesToRead(socketFd, out count);

    public int OpenDescriptors(List<int> fds) => _real.OpenDescriptors(fds);
}
