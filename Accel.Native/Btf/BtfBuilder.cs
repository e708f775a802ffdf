using System.Buffers.Binary;
using System.Text;

namespace Accel.Native.Btf;

/// <summary>
/// Writes the smallest BTF blob a map needs. SK_STORAGE maps must be created with BTF for their key
/// (a 32-bit int) and value (any type of value_size bytes). Synthesising it here keeps the object free
/// of clang's debug info and the loader free of a BTF parser.
/// </summary>
internal static class BtfBuilder
{
    private const int KindInt = 1;
    private const int KindArray = 3;
    private const int KindStruct = 4;

    /// <summary>Type id of the 4-byte signed int key.</summary>
    public const uint IntTypeId = 1;

    /// <summary>Type id of the opaque value struct.</summary>
    public const uint ValueTypeId = 4;

    /// <summary>BTF with: [1] int, [2] unsigned char, [3] unsigned char[<paramref name="valueSize"/>], [4] struct { [3] raw; }.</summary>
    public static byte[] ForStorageMap(uint valueSize)
    {
        var strings = new MemoryStream();
        uint Str(string s)
        {
            uint off = (uint)strings.Length;
            strings.Write(Encoding.ASCII.GetBytes(s + "\0"));
            return off;
        }

        Str("");
        uint intName = Str("int");
        uint ucharName = Str("unsigned char");
        uint valueName = Str("accel_value");
        uint rawName = Str("raw");

        var types = new MemoryStream();
        void U32(uint v)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
            types.Write(b);
        }

        // [1] int: signed, 32 bits.
        U32(intName); U32(KindInt << 24); U32(4); U32((1u << 24) | 32);
        // [2] unsigned char.
        U32(ucharName); U32(KindInt << 24); U32(1); U32(8);
        // [3] unsigned char[valueSize], indexed by int.
        U32(0); U32(KindArray << 24); U32(0); U32(2); U32(IntTypeId); U32(valueSize);
        // [4] struct accel_value { unsigned char raw[valueSize]; }.
        U32(valueName); U32((KindStruct << 24) | 1); U32(valueSize); U32(rawName); U32(3); U32(0);

        byte[] t = types.ToArray();
        byte[] s = strings.ToArray();
        byte[] blob = new byte[24 + t.Length + s.Length];
        Span<byte> h = blob;
        BinaryPrimitives.WriteUInt16LittleEndian(h, 0xEB9F);
        h[2] = 1; // version
        h[3] = 0; // flags
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], 24);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (uint)t.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], (uint)t.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], (uint)s.Length);
        t.CopyTo(blob, 24);
        s.CopyTo(blob, 24 + t.Length);
        return blob;
    }
}
