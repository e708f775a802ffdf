using Accel.Native.Interop;

namespace Accel.Testing;

/// <summary>A stand-in for the syscall boundary, for error paths the real kernel will not produce on demand.
/// Every call is answered by an overridable handler; by default maps, BTF and programs "succeed" with
/// made-up descriptors that are never real.</summary>
internal sealed class FakeKernel : IKernel
{
    public delegate int BpfHandler(BpfCommand command, Span<byte> attr);

    private int _nextFd = 10_000;

    public BpfHandler? OnBpf { get; set; }

    public Func<string, (int Result, FileFacts Facts)> OnStat { get; set; } = _ => (-Errno.ENOENT, default);

    public Func<string, string, int> OnMount { get; set; } = (_, _) => -Errno.EPERM;

    public List<BpfCommand> Calls { get; } = new();

    public uint EffectiveUserId { get; set; }

    public int Bpf(BpfCommand command, Span<byte> attr)
    {
        Calls.Add(command);
        return OnBpf?.Invoke(command, attr) ?? _nextFd++;
    }

    public int Close(int fd) => 0;

    public int GetSockOpt(int socketFd, int level, int name, Span<byte> value, out int length)
    {
        length = 0;
        return -Errno.EBADF;
    }

    public int Open(string path, int flags) => _nextFd++;

    public int Flock(int fd, int operation) => 0;

    public int MapShared(int fd, long length, out nint address)
    {
        address = 0;
        return -Errno.ENODEV;
    }

    public int Unmap(nint address, long length) => 0;

    public int BytesToRead(int socketFd, out int count)
    {
        count = 0;
        return -Errno.EBADF;
    }

    public int OpenDescriptors(List<int> fds)
    {
        fds.Clear();
        return -Errno.ENOSYS;
    }

    public int Stat(string path, out FileFacts facts)
    {
        (int r, facts) = OnStat(path);
        return r;
    }

    public int Mount(string source, string target, string fsType, ulong flags, string? data) => OnMount(target, fsType);
}
