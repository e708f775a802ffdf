using System.Runtime.InteropServices;

namespace Accel.Native.Interop;

/// <summary>A file descriptor owned by the library (map, program, link, BTF, lock file), closed through
/// the kernel that opened it.</summary>
internal sealed class KernelFd : SafeHandle
{
    private readonly IKernel _kernel;

    public KernelFd(IKernel kernel, int fd)
        : base(new IntPtr(-1), ownsHandle: true)
    {
        _kernel = kernel;
        SetHandle(new IntPtr(fd));
    }

    public override bool IsInvalid => handle.ToInt64() < 0;

    /// <summary>The raw descriptor, for building a bpf_attr. Callers keep this handle alive meanwhile.</summary>
    public int Value => (int)handle.ToInt64();

    protected override bool ReleaseHandle() => _kernel.Close((int)handle.ToInt64()) == 0;
}
