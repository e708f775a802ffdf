using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Accel.Native.Elf;
using Accel.Native.Loading;

namespace Accel.Tests.Infrastructure;

/// <summary>Builds of the embedded BPF object with one map's max_entries changed: the same code, another
/// hash, so another version with its own pin directory.</summary>
public static class ObjectVariants
{
    internal static BpfObjectSpec WithMapSize(string map, int delta = 0, uint? size = null)
    {
        byte[] image = EmbeddedObjects.Read("accel.bpf.o");
        ElfObject elf = ElfObject.Parse(image);
        ElfSection maps = elf.Section("accel_maps")!;
        ElfSymbol symbol = elf.Symbols.Single(s => s.Name == map);
        if (!MemoryMarshal.TryGetArray(maps.Data, out ArraySegment<byte> section))
        {
            throw new InvalidOperationException("The section is not a slice of the image.");
        }

        int offset = section.Offset + (int)symbol.Value + 12; // struct accel_map_def.max_entries
        uint current = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(offset));
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(offset), size ?? (uint)(current + delta));
        return BpfObjectSpec.Parse(image);
    }
}
