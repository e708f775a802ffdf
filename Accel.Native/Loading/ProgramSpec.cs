using System.Buffers.Binary;
using Accel.Native.Bpf;

namespace Accel.Native.Loading;

/// <summary>A program as the object declares it: its instructions and the map each lddw refers to.</summary>
internal sealed record ProgramSpec(
    string Name,
    string Section,
    BpfProgramType Type,
    BpfAttachType AttachType,
    ReadOnlyMemory<byte> Instructions,
    IReadOnlyList<(int InstructionOffset, string Map)> MapReferences,
    string? AttachFunction = null)
{
    private const byte OpLoadImm64 = 0x18;
    private const byte PseudoMapFd = 1;

    /// <summary>The instructions with every map reference pointing at <paramref name="mapFds"/>.</summary>
    public byte[] Relocate(IReadOnlyDictionary<string, int> mapFds)
    {
        byte[] insns = Instructions.ToArray();
        foreach (var (offset, map) in MapReferences)
        {
            if (insns[offset] != OpLoadImm64)
            {
                throw new InvalidDataException($"{Name}: map relocation at {offset} is not on a 64-bit immediate load.");
            }

            if (!mapFds.TryGetValue(map, out int fd))
            {
                throw new InvalidDataException($"{Name}: refers to map '{map}', which the object does not declare.");
            }

            // dst_reg stays; src_reg becomes BPF_PSEUDO_MAP_FD; imm becomes the fd.
            insns[offset + 1] = (byte)((insns[offset + 1] & 0x0f) | (PseudoMapFd << 4));
            BinaryPrimitives.WriteInt32LittleEndian(insns.AsSpan(offset + 4), fd);
        }

        return insns;
    }
}
