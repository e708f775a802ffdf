using System.Buffers.Binary;
using System.Text;

namespace Accel.Native.Btf;

/// <summary>
/// Finds a function's type id in the kernel's own BTF (<c>/sys/kernel/btf/vmlinux</c>), which an fentry/fexit
/// program names at load time. Only walks the type section; nothing else of BTF is interpreted.
/// </summary>
internal static class KernelBtf
{
    public const string VmlinuxPath = "/sys/kernel/btf/vmlinux";
    private const int KindFunc = 12;

    /// <summary>The BTF id of the FUNC named <paramref name="name"/>, or null when the kernel has none.</summary>
    public static uint? FindFunction(ReadOnlySpan<byte> btf, string name)
    {
        if (btf.Length < 24 || BinaryPrimitives.ReadUInt16LittleEndian(btf) != 0xEB9F)
        {
            throw new InvalidDataException("Not a little-endian BTF blob.");
        }

        uint hdrLen = BinaryPrimitives.ReadUInt32LittleEndian(btf[4..]);
        uint typeOff = BinaryPrimitives.ReadUInt32LittleEndian(btf[8..]);
        uint typeLen = BinaryPrimitives.ReadUInt32LittleEndian(btf[12..]);
        uint strOff = BinaryPrimitives.ReadUInt32LittleEndian(btf[16..]);
        uint strLen = BinaryPrimitives.ReadUInt32LittleEndian(btf[20..]);
        ReadOnlySpan<byte> types = btf.Slice((int)(hdrLen + typeOff), (int)typeLen);
        ReadOnlySpan<byte> strings = btf.Slice((int)(hdrLen + strOff), (int)strLen);
        byte[] wanted = Encoding.ASCII.GetBytes(name);

        uint id = 1;
        int pos = 0;
        while (pos + 12 <= types.Length)
        {
            uint nameOff = BinaryPrimitives.ReadUInt32LittleEndian(types[pos..]);
            uint info = BinaryPrimitives.ReadUInt32LittleEndian(types[(pos + 4)..]);
            int kind = (int)((info >> 24) & 0x1f);
            int vlen = (int)(info & 0xffff);
            if (kind == KindFunc && NameIs(strings, nameOff, wanted))
            {
                return id;
            }

            pos += 12 + kind switch
            {
                1 => 4,              // INT
                3 => 12,             // ARRAY
                4 or 5 => 12 * vlen, // STRUCT, UNION
                6 => 8 * vlen,       // ENUM
                13 => 8 * vlen,      // FUNC_PROTO
                14 => 4,             // VAR
                15 => 12 * vlen,     // DATASEC
                17 => 4,             // DECL_TAG
                19 => 12 * vlen,     // ENUM64
                _ => 0,              // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
            };
            id++;
        }

        return null;
    }

    private static bool NameIs(ReadOnlySpan<byte> strings, uint offset, ReadOnlySpan<byte> wanted)
    {
        if (offset + wanted.Length >= strings.Length)
        {
            return false;
        }

        ReadOnlySpan<byte> s = strings[(int)offset..];
        return s.StartsWith(wanted) && s[wanted.Length] == 0;
    }
}
