using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Interop;
using Accel.Testing;

namespace Accel.Tests.Kernel;

[Collection(KernelCollection.Name)]
public sealed class ForeignProgramTests(KernelFixture fixture)
{
    /// <summary>Someone else attaches a stream verdict program (which sees every received byte) to the shared
    /// map: the next service to start detects it, reports it and stays on TCP rather than trusting it.</summary>
    [KernelFact]
    public void A_foreign_program_on_the_map_is_detected_and_not_trusted()
    {
        using var first = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(first.IsEnabled);
        var bpf = new BpfSyscalls(LinuxKernel.Instance);
        byte[] passAll = [0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]; // r0 = SK_PASS; exit
        using KernelFd foreign = bpf.LoadProgram("foreign", BpfProgramType.SkSkb, BpfAttachType.SkSkbStreamVerdict, passAll, "GPL");
        KernelFd map = first.Kernel!.Store.Map(AbiNames.SockHash);
        Assert.Equal(0, bpf.TryAttach(foreign, map.Value, BpfAttachType.SkSkbStreamVerdict, 0));
        try
        {
            using var second = AccelerationEngine.Start(fixture.Environment.Options());
            Assert.Equal((false, AccelerationDisabledReason.IncompatiblePinnedObjects), (second.IsEnabled, second.Status.Reason));
            Assert.Contains("not this library's", second.Status.Message);
            Assert.Contains("SkSkbStreamVerdict", second.Status.Message);
        }
        finally
        {
            Assert.Equal(0, bpf.TryDetach(foreign, map.Value, BpfAttachType.SkSkbStreamVerdict));
        }

        using var third = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(third.IsEnabled, third.Status.Message);
    }
}
