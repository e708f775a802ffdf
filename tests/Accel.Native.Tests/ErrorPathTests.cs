using System.Runtime.InteropServices;
using System.Text;
using Accel.Native.Bpf;
using Accel.Native.Btf;
using Accel.Native.Interop;
using Accel.Native.Loading;
using Accel.Native.Pinning;
using Accel.Native.Probe;
using Accel.Testing;

namespace Accel.Native.Tests;

/// <summary>What the kernel boundary says when the kernel says no.</summary>
public sealed class ErrorPathTests
{
    private static readonly Capabilities All = new(ulong.MaxValue);

    [Fact]
    public void A_rejected_program_reports_errno_and_the_verifier_log_tail()
    {
        var kernel = new FakeKernel
        {
            OnBpf = (cmd, attr) =>
            {
                if (cmd != BpfCommand.ProgLoad)
                {
                    return 3;
                }

                ulong logBuf = MemoryMarshal.Read<ulong>(attr[32..]);
                uint logSize = MemoryMarshal.Read<uint>(attr[28..]);
                if (logBuf != 0)
                {
                    byte[] log = Encoding.ASCII.GetBytes(string.Join('\n', Enumerable.Range(1, 30).Select(i => $"line {i}")) + "\nR2 invalid mem access 'scalar'\n\0");
                    unsafe
                    {
                        log.AsSpan(0, (int)Math.Min(log.Length, logSize)).CopyTo(new Span<byte>((void*)logBuf, (int)logSize));
                    }
                }

                return -Errno.EACCES;
            },
        };
        var bpf = new BpfSyscalls(kernel);
        var e = Assert.Throws<BpfProgramLoadException>(() => bpf.LoadProgram("accel_msg", BpfProgramType.SkMsg, BpfAttachType.SkMsgVerdict, new byte[8], "GPL"));
        Assert.Equal(Errno.EACCES, e.Errno);
        Assert.Contains("EACCES (13)", e.Message);
        Assert.Contains("R2 invalid mem access", e.Message);
        Assert.Contains("(11 earlier lines omitted)", e.VerifierLogTail);
        Assert.DoesNotContain("line 10\n", e.VerifierLogTail);
    }

    [Fact]
    public void Missing_capabilities_name_what_to_add()
    {
        var probe = new KernelSupportProbe(new BpfSyscalls(new FakeKernel()));
        var e = Assert.Throws<UnavailableException>(() => probe.Check("/sys/fs/bpf", true, new Capabilities(1UL << Capabilities.NetAdmin)));
        Assert.Equal(Unavailability.MissingCapabilities, e.Kind);
        Assert.Contains("CAP_BPF", e.Message);
        Assert.DoesNotContain("CAP_NET_ADMIN,", e.Message);
    }

    [Theory]
    [InlineData(Errno.EPERM, Unavailability.MissingCapabilities)]
    [InlineData(Errno.EINVAL, Unavailability.KernelUnsupported)]
    public void A_kernel_that_refuses_a_sockhash_is_reported(int errno, Unavailability expected)
    {
        var kernel = new FakeKernel { OnBpf = (cmd, _) => cmd == BpfCommand.MapCreate ? -errno : 3 };
        var e = Assert.Throws<UnavailableException>(() => new KernelSupportProbe(new BpfSyscalls(kernel)).Check("/sys/fs/bpf", true, All));
        Assert.Equal(expected, e.Kind);
        Assert.Contains("SOCKHASH", e.Message);
    }

    [Fact]
    public void A_missing_bpffs_that_cannot_be_mounted_says_how_to_mount_it()
    {
        var kernel = new FakeKernel
        {
            OnStat = _ => (0, new FileFacts(0, 0x41C0, FileSystemMagic: 0x01021994 /* tmpfs */, IsDirectory: true, Inode: 1)),
            OnMount = (_, _) => -Errno.EPERM,
        };
        var e = Assert.Throws<UnavailableException>(() => new KernelSupportProbe(new BpfSyscalls(kernel)).Check("/sys/fs/bpf", true, All));
        Assert.Equal(Unavailability.BpffsUnavailable, e.Kind);
        Assert.Contains("mount -t bpf bpf /sys/fs/bpf", e.Message);
        Assert.Contains("EPERM", e.Message);
    }

    [Fact]
    public void A_missing_bpffs_is_mounted_when_permitted()
    {
        string? mounted = null;
        var kernel = new FakeKernel
        {
            OnStat = _ => (0, new FileFacts(0, 0x41C0, 0x01021994, true, 1)),
            OnMount = (target, type) => { mounted = $"{type} at {target}"; return 0; },
        };
        SupportReport report = new KernelSupportProbe(new BpfSyscalls(kernel)).Check("/sys/fs/bpf", true, All);
        Assert.True(report.MountedBpffs);
        Assert.Equal("bpf at /sys/fs/bpf", mounted);
    }

    [Theory]
    [InlineData(1000u, 0x41C0u, "belongs to uid 1000")]   // drwx------ owned by someone else
    [InlineData(0u, 0x41EDu, "has mode 755")]            // drwxr-xr-x
    public void Pins_owned_by_others_or_reachable_by_others_are_refused(uint owner, uint mode, string expected)
    {
        var kernel = new FakeKernel
        {
            EffectiveUserId = 0,
            OnStat = _ => (0, new FileFacts(owner, mode, KernelSupportProbe.BpffsMagic, true, 1)),
        };
        var e = Assert.Throws<UnavailableException>(() => PinnedObjectStore.OpenOrCreate(new BpfSyscalls(kernel), EmbeddedObjects.Accel, "/sys/fs/bpf"));
        Assert.Equal(Unavailability.UnsafePinnedObjects, e.Kind);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain(BpfCommand.MapCreate, kernel.Calls);
    }

    [Fact]
    public void A_pinned_map_of_another_shape_is_refused_not_used()
    {
        var kernel = new FakeKernel
        {
            EffectiveUserId = 0,
            OnStat = _ => (0, new FileFacts(0, 0x41C0, KernelSupportProbe.BpffsMagic, true, 1)),
            OnBpf = (cmd, attr) =>
            {
                if (cmd == BpfCommand.ObjGetInfoByFd)
                {
                    unsafe
                    {
                        var info = new Span<byte>((void*)MemoryMarshal.Read<ulong>(attr[8..]), (int)MemoryMarshal.Read<uint>(attr[4..]));
                        MemoryMarshal.Write(info, 18u);       // a sockhash...
                        MemoryMarshal.Write(info[8..], 8u);   // ...with 8-byte keys
                    }
                }

                return 5;
            },
        };
        var e = Assert.Throws<UnavailableException>(() => PinnedObjectStore.OpenOrCreate(new BpfSyscalls(kernel), EmbeddedObjects.Accel, "/sys/fs/bpf"));
        Assert.Equal(Unavailability.IncompatiblePinnedObjects, e.Kind);
        Assert.Contains("key 8 B", e.Message);
        Assert.DoesNotContain(BpfCommand.MapCreate, kernel.Calls);
    }

    [Fact]
    public void A_kernel_that_refuses_tracing_programs_is_asked_before_its_BTF_is_read()
    {
        var loads = new List<(BpfProgramType Type, uint BtfId)>();
        var kernel = TracingKernel(loads, permitted: false);
        using var store = PinnedObjectStore.OpenOrCreate(new BpfSyscalls(kernel), EmbeddedObjects.Accel, "/sys/fs/bpf");

        Assert.False(store.TracksConsumption);
        Assert.Matches("EPERM|CAP_PERFMON", store.ConsumptionTrackingProblem);
        // Refused at the load that names no target (and once more, for the verifier log), never with a BTF id: the
        // kernel's BTF, which only a target's id needs, was not needed.
        Assert.Equal([0u, 0u], loads.Where(l => l.Type == BpfProgramType.Tracing).Select(l => l.BtfId));
        Assert.DoesNotContain(BpfCommand.RawTracepointOpen, kernel.Calls);
    }

    [Fact]
    public void A_kernel_that_takes_tracing_programs_gets_the_consumption_program_on_its_function()
    {
        var loads = new List<(BpfProgramType Type, uint BtfId)>();
        var kernel = TracingKernel(loads, permitted: true);
        using var store = PinnedObjectStore.OpenOrCreate(new BpfSyscalls(kernel), EmbeddedObjects.Accel, "/sys/fs/bpf");

        uint[] tracingLoads = loads.Where(l => l.Type == BpfProgramType.Tracing).Select(l => l.BtfId).ToArray();
        if (!File.Exists(KernelBtf.VmlinuxPath))
        {
            Assert.Contains(KernelBtf.VmlinuxPath, store.ConsumptionTrackingProblem); // a kernel without BTF: named, and no load with a target
            Assert.All(tracingLoads, id => Assert.Equal(0u, id));
            return;
        }

        // The load that names no target is refused with EINVAL where tracing is permitted; the real one names the function.
        uint? function = KernelBtf.FindFunction(File.ReadAllBytes(KernelBtf.VmlinuxPath), "__sk_msg_recvmsg");
        Assert.NotNull(function);
        Assert.Equal(function, tracingLoads[^1]);
        Assert.Equal(0u, tracingLoads[0]);
        Assert.True(store.TracksConsumption, store.ConsumptionTrackingProblem);
        Assert.Contains(BpfCommand.RawTracepointOpen, kernel.Calls);
    }

    /// <summary>A kernel with nothing pinned yet that creates and loads what it is asked to, recording each program load's
    /// type and attach BTF id. Tracing programs are refused with EPERM, or (<paramref name="permitted"/>) taken when they
    /// name a target and refused with EINVAL when they do not, as the kernel does.</summary>
    private static FakeKernel TracingKernel(List<(BpfProgramType Type, uint BtfId)> loads, bool permitted) => new()
    {
        EffectiveUserId = 0,
        OnStat = path => Path.GetFileName(path) is "bpf" or "accel" || Path.GetFileName(path).StartsWith("v1-", StringComparison.Ordinal)
            ? (0, new FileFacts(0, 0x41C0, KernelSupportProbe.BpffsMagic, true, 1))
            : (-Errno.ENOENT, default),
        OnBpf = (cmd, attr) =>
        {
            switch (cmd)
            {
                case BpfCommand.ProgLoad:
                    var type = (BpfProgramType)MemoryMarshal.Read<uint>(attr);
                    uint btfId = MemoryMarshal.Read<uint>(attr[108..]);
                    loads.Add((type, btfId));
                    return type != BpfProgramType.Tracing ? 7 : !permitted ? -Errno.EPERM : btfId == 0 ? -Errno.EINVAL : 8;
                case BpfCommand.ProgQuery:
                    return -Errno.EINVAL; // as kernels that cannot list a sockmap's programs: nothing to check
                default:
                    return 9;
            }
        },
    };

    [Fact]
    public void Verifier_log_tail_keeps_short_logs_whole()
    {
        Assert.Equal("a\nb", VerifierLog.Tail("a\nb\n\0garbage"u8));
        Assert.Equal("", VerifierLog.Tail("\0"u8));
    }
}
