using Accel.Native.Bpf;
using Accel.Native.Btf;
using Accel.Native.Interop;

namespace Accel.Native.Probe;

/// <summary>
/// Answers "can the fast path run here?" with either yes or a reason a person can act on.
/// It creates two throw-away maps (a SOCKHASH and an SK_STORAGE map) to ask the kernel itself.
/// </summary>
internal sealed class KernelSupportProbe(BpfSyscalls bpf)
{
    public const long BpffsMagic = 0xCAFE4A11;
    private const ulong MsNoSuid = 2, MsNoDev = 4, MsNoExec = 8;

    /// <summary>Throws <see cref="UnavailableException"/> unless the kernel, the capabilities and bpffs at
    /// <paramref name="pinRoot"/> are all there. Mounts bpffs at <paramref name="pinRoot"/> when it is
    /// missing, <paramref name="mountIfMissing"/> is set and the process may.</summary>
    public SupportReport Check(string pinRoot, bool mountIfMissing, Capabilities caps)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new UnavailableException(Unavailability.NotLinux,
                $"Socket acceleration needs Linux; this is {System.Runtime.InteropServices.RuntimeInformation.OSDescription}. Traffic uses plain TCP.");
        }

        if (!caps.CanLoadFastPath)
        {
            throw new UnavailableException(Unavailability.MissingCapabilities,
                $"The process lacks {caps.Missing()}. Grant CAP_BPF and CAP_NET_ADMIN (e.g. securityContext.capabilities.add in Kubernetes, or run as root) to enable socket acceleration. Traffic uses plain TCP.");
        }

        ProbeMap("SOCKHASH", () => bpf.CreateMap("accel_probe", BpfMapType.SockHash, 4, 8, 1, 0),
            "The kernel does not support BPF_MAP_TYPE_SOCKHASH (Linux 4.18+ with CONFIG_BPF_STREAM_PARSER).");
        ProbeMap("SK_STORAGE", () =>
        {
            using KernelFd btf = bpf.LoadBtf(BtfBuilder.ForStorageMap(8));
            return bpf.CreateMap("accel_probe", BpfMapType.SkStorage, 4, 8, 0, BpfFlags.NoPrealloc | BpfFlags.Clone,
                btf, BtfBuilder.IntTypeId, BtfBuilder.ValueTypeId);
        }, "The kernel does not support socket-local storage with BPF_F_CLONE (Linux 5.4+ with CONFIG_BPF_SYSCALL and BTF).");

        bool mounted = EnsureBpffs(pinRoot, mountIfMissing);
        return new SupportReport(caps.Has(Capabilities.Perfmon) || caps.Has(Capabilities.SysAdmin), mounted);
    }

    private static void ProbeMap(string what, Func<KernelFd> create, string unsupported)
    {
        try
        {
            create().Dispose();
        }
        catch (BpfException e) when (e.Errno is Errno.EPERM or Errno.EACCES)
        {
            throw new UnavailableException(Unavailability.MissingCapabilities,
                $"Creating a {what} map was refused ({Errno.Describe(e.Errno)}) although the capabilities look present: a user namespace, seccomp or LSM policy may forbid bpf(2). Traffic uses plain TCP.", e);
        }
        catch (BpfException e)
        {
            throw new UnavailableException(Unavailability.KernelUnsupported, $"{unsupported} {e.Message}. Traffic uses plain TCP.", e);
        }
    }

    private bool EnsureBpffs(string pinRoot, bool mountIfMissing)
    {
        IKernel k = bpf.Kernel;
        int r = k.Stat(pinRoot, out FileFacts facts);
        if (r == 0 && facts.FileSystemMagic == BpffsMagic)
        {
            return false;
        }

        string problem = r < 0
            ? $"{pinRoot} does not exist ({Errno.Describe(-r)})"
            : $"{pinRoot} is not a bpffs mount";
        if (!mountIfMissing || r < 0)
        {
            throw new UnavailableException(Unavailability.BpffsUnavailable,
                $"{problem}. Mount it with 'mount -t bpf bpf {pinRoot}' (in Kubernetes, mount the host's /sys/fs/bpf into the pod). Traffic uses plain TCP.");
        }

        int m = k.Mount("bpf", pinRoot, "bpf", MsNoSuid | MsNoDev | MsNoExec, "mode=0700");
        if (m < 0)
        {
            throw new UnavailableException(Unavailability.BpffsUnavailable,
                $"{problem}, and mounting bpffs there failed: {Errno.Describe(-m)}. Mount it with 'mount -t bpf bpf {pinRoot}'. Traffic uses plain TCP.");
        }

        return true;
    }
}

/// <summary>What the probe found beyond "available".</summary>
/// <param name="PerfmonAvailable">CAP_PERFMON is present (BTF pointer access would be possible).</param>
/// <param name="MountedBpffs">The probe mounted bpffs at the pin root itself.</param>
internal readonly record struct SupportReport(bool PerfmonAvailable, bool MountedBpffs);
