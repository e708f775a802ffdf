using System.Buffers.Binary;
using System.Text;

namespace Accel.Native.Elf;

/// <summary>
/// The parts of a relocatable 64-bit little-endian ELF object (as clang <c>-target bpf</c> writes it)
/// that a BPF loader needs: sections, symbols and REL relocations. Anything else is rejected with a
/// message that names what was found.
/// </summary>
internal sealed class ElfObject
{
    private const ushort MachineBpf = 247;
    private const uint SectionRel = 9;
    private const uint SectionSymtab = 2;

    private ElfObject(IReadOnlyList<ElfSection> sections, IReadOnlyList<ElfSymbol> symbols, IReadOnlyList<ElfRelocation> relocations)
    {
        Sections = sections;
        Symbols = symbols;
        Relocations = relocations;
    }

    public IReadOnlyList<ElfSection> Sections { get; }

    public IReadOnlyList<ElfSymbol> Symbols { get; }

    public IReadOnlyList<ElfRelocation> Relocations { get; }

    public ElfSection? Section(string name) => Sections.FirstOrDefault(s => s.Name == name);

    public static ElfObject Parse(ReadOnlyMemory<byte> image)
    {
        ReadOnlySpan<byte> b = image.Span;
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
        {
            throw new InvalidDataException("Not an ELF file.");
        }

        if (b[4] != 2 || b[5] != 1)
        {
            throw new InvalidDataException("Only 64-bit little-endian ELF objects are supported.");
        }

        ushort machine = U16(b, 18);
        if (machine != MachineBpf)
        {
            throw new InvalidDataException($"ELF machine is {machine}, not BPF ({MachineBpf}).");
        }

        ulong shoff = U64(b, 0x28);
        ushort shentsize = U16(b, 0x3A);
        ushort shnum = U16(b, 0x3C);
        ushort shstrndx = U16(b, 0x3E);
        if (shentsize != 64 || shoff + (ulong)shnum * 64 > (ulong)b.Length || shstrndx >= shnum)
        {
            throw new InvalidDataException("Malformed ELF section header table.");
        }

        var raw = new (uint Name, uint Type, ulong Flags, ulong Offset, ulong Size, uint Link, uint Info)[shnum];
        for (int i = 0; i < shnum; i++)
        {
            int h = checked((int)shoff + i * 64);
            raw[i] = (U32(b, h), U32(b, h + 4), U64(b, h + 8), U64(b, h + 24), U64(b, h + 32), U32(b, h + 40), U32(b, h + 44));
            if (raw[i].Type != 8 /* NOBITS */ && raw[i].Offset + raw[i].Size > (ulong)b.Length)
            {
                throw new InvalidDataException($"ELF section {i} lies outside the file.");
            }
        }

        ReadOnlySpan<byte> shstr = b.Slice((int)raw[shstrndx].Offset, (int)raw[shstrndx].Size);
        var sections = new List<ElfSection>(shnum);
        for (int i = 0; i < shnum; i++)
        {
            var r = raw[i];
            ReadOnlyMemory<byte> data = r.Type == 8 ? ReadOnlyMemory<byte>.Empty : image.Slice((int)r.Offset, (int)r.Size);
            sections.Add(new ElfSection(i, CString(shstr, r.Name), r.Type, r.Flags, data, r.Info));
        }

        var symbols = new List<ElfSymbol>();
        int symtab = Array.FindIndex(raw, s => s.Type == SectionSymtab);
        if (symtab >= 0)
        {
            ReadOnlySpan<byte> strtab = sections[(int)raw[symtab].Link].Data.Span;
            ReadOnlySpan<byte> st = sections[symtab].Data.Span;
            for (int off = 0; off + 24 <= st.Length; off += 24)
            {
                symbols.Add(new ElfSymbol(
                    CString(strtab, U32(st, off)),
                    (byte)(st[off + 4] & 0xf),
                    U16(st, off + 6),
                    U64(st, off + 8),
                    U64(st, off + 16)));
            }
        }

        var relocations = new List<ElfRelocation>();
        foreach (var s in sections.Where(s => s.Type == SectionRel))
        {
            ReadOnlySpan<byte> rel = s.Data.Span;
            for (int off = 0; off + 16 <= rel.Length; off += 16)
            {
                ulong info = U64(rel, off + 8);
                int sym = (int)(info >> 32);
                if (sym >= symbols.Count)
                {
                    throw new InvalidDataException($"Relocation in {s.Name} names symbol {sym}, past the symbol table.");
                }

                relocations.Add(new ElfRelocation((int)s.Info, U64(rel, off), (uint)info, symbols[sym]));
            }
        }

        return new ElfObject(sections, symbols, relocations);
    }

    private static string CString(ReadOnlySpan<byte> table, uint offset)
    {
        if (offset >= table.Length)
        {
            return "";
        }

        ReadOnlySpan<byte> s = table[(int)offset..];
        int end = s.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? s : s[..end]);
    }

    private static ushort U16(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b[o..]);

    private static uint U32(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b[o..]);

    private static ulong U64(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b[o..]);
}

internal sealed record ElfSection(int Index, string Name, uint Type, ulong Flags, ReadOnlyMemory<byte> Data, uint Info)
{
    public bool IsExecutable => (Flags & 0x4) != 0;
}

internal sealed record ElfSymbol(string Name, byte Type, ushort SectionIndex, ulong Value, ulong Size)
{
    public const byte Function = 2;
}

/// <summary>A REL entry: in section <paramref name="TargetSection"/> at <paramref name="Offset"/>, refer to <paramref name="Symbol"/>.</summary>
internal sealed record ElfRelocation(int TargetSection, ulong Offset, uint Type, ElfSymbol Symbol);
