using System.Runtime.InteropServices;
using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Loading;

namespace Accel.Native.Tests;

/// <summary>The embedded object is what the loader and the managed ABI mirror expect.</summary>
public sealed class ObjectLayoutTests
{
    private static readonly BpfObjectSpec Spec = EmbeddedObjects.Accel;

    [Fact]
    public void Embedded_object_declares_the_maps_and_programs_the_engine_uses()
    {
        Assert.Equal(BpfMapType.SockHash, Spec.Map(AbiNames.SockHash).Type);
        Assert.Equal(BpfMapType.SkStorage, Spec.Map(AbiNames.Config).Type);
        Assert.Equal(BpfFlags.NoPrealloc | BpfFlags.Clone, Spec.Map(AbiNames.Config).Flags);
        Assert.Equal(BpfMapType.SkStorage, Spec.Map(AbiNames.State).Type);
        Assert.Equal(BpfMapType.LruPercpuHash, Spec.Map(AbiNames.Owners).Type);
        Assert.Equal(BpfMapType.LpmTrie, Spec.Map(AbiNames.LocalPrefixes).Type);
        Assert.Equal(BpfMapType.LruHash, Spec.Map(AbiNames.Consumed).Type);
        Assert.Equal(BpfProgramType.SockOps, Spec.Program(AbiNames.SockOpsProgram).Type);
        Assert.Equal(BpfProgramType.SkMsg, Spec.Program(AbiNames.MessageProgram).Type);
        Assert.Contains(Spec.Programs, p => p.Type == BpfProgramType.Tracing && p.AttachFunction == "__sk_msg_recvmsg");
        Assert.StartsWith("Dual MIT/GPL", Spec.License);
        Assert.Matches("^v1-[0-9a-f]{12}$", Spec.Abi);
    }

    [Fact]
    public void Managed_mirrors_have_the_sizes_of_the_C_layouts()
    {
        Assert.Equal(Spec.Map(AbiNames.SockHash).KeySize, (uint)Marshal.SizeOf<AccelKey>());
        Assert.Equal(Spec.Map(AbiNames.Consumed).KeySize, (uint)Marshal.SizeOf<AccelKey>());
        Assert.Equal(Spec.Map(AbiNames.Config).ValueSize, (uint)Marshal.SizeOf<AccelSockConfig>());
        Assert.Equal(Spec.Map(AbiNames.State).ValueSize, (uint)Marshal.SizeOf<AccelSockState>());
        Assert.Equal(Spec.Map(AbiNames.Owners).ValueSize, (uint)Marshal.SizeOf<AccelOwnerStats>());
        Assert.Equal(Spec.Map(AbiNames.LocalPrefixes).KeySize, (uint)Marshal.SizeOf<AccelPrefix>());
        Assert.Equal(Spec.Map(AbiNames.Services).ValueSize, (uint)Marshal.SizeOf<AccelService>());
        Assert.Equal(Spec.Map(AbiNames.Consumed).ValueSize, (uint)Marshal.SizeOf<AccelFlow>());
        Assert.Equal(Spec.Map(AbiNames.Scope).ValueSize, (uint)Marshal.SizeOf<AccelSockConfig>());
        Assert.Equal((uint)(AccelTrack.Block * AccelTrack.Blocks), Spec.Map(AbiNames.Track).MaxEntries);
    }

    [Fact]
    public void Every_map_reference_is_relocated_to_its_map_fd()
    {
        ProgramSpec msg = Spec.Program(AbiNames.MessageProgram);
        var fds = Spec.Maps.Select((m, i) => (m.Name, Fd: 100 + i)).ToDictionary(x => x.Name, x => x.Fd);
        byte[] insns = msg.Relocate(fds);
        Assert.NotEmpty(msg.MapReferences);
        foreach (var (offset, map) in msg.MapReferences)
        {
            Assert.Equal(0x18, insns[offset]);          // lddw
            Assert.Equal(1, insns[offset + 1] >> 4);     // src_reg = BPF_PSEUDO_MAP_FD
            Assert.Equal(fds[map], BitConverter.ToInt32(insns, offset + 4));
        }
    }

    [Fact]
    public void A_truncated_object_is_rejected_with_a_reason()
    {
        byte[] image = EmbeddedObjects.Read("accel.bpf.o");
        var e = Assert.Throws<InvalidDataException>(() => BpfObjectSpec.Parse(image.AsMemory(0, 100)));
        Assert.Contains("ELF", e.Message);
        Assert.Throws<InvalidDataException>(() => BpfObjectSpec.Parse(new byte[64]));
    }
}
