using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Accel.Native.Interop;
using Accel.Native.Probe;
using Accel.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Accel.Tests.Unit;

/// <summary>Start never throws for an environment that cannot accelerate; it says why. Options fail loudly.</summary>
public sealed class EngineStartTests
{
    [Theory]
    [InlineData("relative/path", null, 4L << 20, "PinRoot")]
    [InlineData("/sys/fs/bpf", "10.0.0.0/33", 4L << 20, "SameHostPeerRanges")]
    [InlineData("/sys/fs/bpf", "not-a-range", 4L << 20, "SameHostPeerRanges")]
    [InlineData("/sys/fs/bpf", null, -1L, "MaxRedirectedBacklogBytes")]
    [InlineData("/sys/fs/bpf", null, 2L << 30, "MaxRedirectedBacklogBytes")]
    public void Invalid_options_fail_at_start_naming_the_option(string pinRoot, string? range, long backlog, string option)
    {
        var options = new AccelerationEngineOptions { PinRoot = pinRoot, MaxRedirectedBacklogBytes = backlog };
        if (range is not null)
        {
            options.SameHostPeerRanges.Add(range);
        }

        var e = Assert.ThrowsAny<ArgumentException>(() => AccelerationEngine.Start(options));
        Assert.Equal(option, e.ParamName);
        Assert.Contains(option, e.Message);
    }

    [Fact]
    public void An_undefined_scope_fails_at_start_naming_the_option()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => AccelerationEngine.Start(new AccelerationEngineOptions { Scope = (AccelerationScope)7 }));
        Assert.Equal(nameof(AccelerationEngineOptions.Scope), e.ParamName);
        Assert.Contains("PreparedSockets or Process", e.Message);
    }

    [Fact]
    public void Disabled_by_options_registers_nothing_and_says_so()
    {
        var kernel = new FakeKernel();
        using var engine = AccelerationEngine.Start(new AccelerationEngineOptions { Enabled = false }, NullLogger.Instance, kernel);
        Assert.False(engine.IsEnabled);
        Assert.Equal(AccelerationDisabledReason.DisabledByOptions, engine.Status.Reason);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.False(engine.PrepareConnect(socket));
        Assert.Equal(RegistrationOutcome.Disabled, engine.Register(socket).Outcome);
        Assert.Equal(default, engine.GetStatistics());
        Assert.Empty(kernel.Calls);
    }

    [Fact]
    public void A_kernel_refusing_bpf_leaves_the_engine_disabled_with_the_reason()
    {
        var kernel = new FakeKernel { OnBpf = (_, _) => -Errno.EPERM };
        using var engine = AccelerationEngine.Start(new AccelerationEngineOptions(), NullLogger.Instance, kernel);
        Assert.False(engine.IsEnabled);
        Assert.Equal(AccelerationDisabledReason.MissingCapabilities, engine.Status.Reason);
        Assert.Contains("EPERM", engine.Status.Message);
        Assert.Contains("plain TCP", engine.Status.Message);
    }

    [Fact]
    public void A_program_the_verifier_rejects_leaves_the_engine_disabled_with_the_log_tail()
    {
        const string root = "/fake/bpffs";
        var kernel = new FakeKernel
        {
            // The pin root and the accel directories exist, private and on bpffs; nothing is pinned yet.
            OnStat = path => path == root || Path.GetFileName(path) == "accel" || Path.GetFileName(path).StartsWith("v1-", StringComparison.Ordinal)
                ? (0, new FileFacts(0, 0x41C0, KernelSupportProbe.BpffsMagic, true, 1))
                : (-Errno.ENOENT, default),
            OnBpf = (cmd, attr) =>
            {
                if (cmd == BpfCommand.ObjGet)
                {
                    return -Errno.ENOENT;
                }

                if (cmd != BpfCommand.ProgLoad)
                {
                    return 7;
                }

                ulong log = MemoryMarshal.Read<ulong>(attr[32..]);
                if (log != 0)
                {
                    unsafe
                    {
                        Encoding.ASCII.GetBytes("0: (b7) r0 = 0\ninvalid bpf_context access off=76 size=4\n\0").CopyTo(new Span<byte>((void*)log, 64));
                    }
                }

                return -Errno.EACCES;
            },
        };

        using var engine = AccelerationEngine.Start(new AccelerationEngineOptions { PinRoot = root, CgroupPath = "/fake/cgroup" }, NullLogger.Instance, kernel);
        Assert.False(engine.IsEnabled);
        Assert.Equal(AccelerationDisabledReason.LoadFailed, engine.Status.Reason);
        Assert.Contains("BPF_PROG_LOAD", engine.Status.Message);
        Assert.Contains("EACCES", engine.Status.Message);
        Assert.Contains("invalid bpf_context access", engine.Status.Message);
    }

    [Fact]
    public void Every_kernel_unavailability_maps_to_its_own_disabled_reason()
    {
        var reasons = Enum.GetValues<Unavailability>().Where(u => u != Unavailability.None).Select(AccelerationEngine.ToReason).ToList();
        Assert.Equal(reasons.Count, reasons.Distinct().Count());
        Assert.DoesNotContain(AccelerationDisabledReason.None, reasons);
    }
}
