using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Accel.Native.Bpf;
using Accel.Native.Elf;

namespace Accel.Native.Loading;

/// <summary>
/// What a compiled BPF object holds: maps, programs, licence, and a content hash that names its ABI.
/// Only what this project's objects use is understood; anything else is an error, never ignored.
/// </summary>
internal sealed class BpfObjectSpec
{
    private const string MapSection = "accel_maps";
    private const int MapDefSize = 20;

    private BpfObjectSpec(IReadOnlyList<MapSpec> maps, IReadOnlyList<ProgramSpec> programs, string license, string abi)
    {
        Maps = maps;
        Programs = programs;
        License = license;
        Abi = abi;
    }

    public IReadOnlyList<MapSpec> Maps { get; }

    public IReadOnlyList<ProgramSpec> Programs { get; }

    public string License { get; }

    /// <summary>"v1-" and the first 12 hex digits of the object's SHA-256: objects that differ in any byte
    /// never share pinned maps (a second program on a map silently replaces the first; KERNEL-FACTS 6).</summary>
    public string Abi { get; }

    public MapSpec Map(string name) => Maps.Single(m => m.Name == name);

    public ProgramSpec Program(string name) => Programs.Single(p => p.Name == name);

    public static BpfObjectSpec Parse(ReadOnlyMemory<byte> image)
    {
        var elf = ElfObject.Parse(image);
        ElfSection mapSection = elf.Section(MapSection)
            ?? throw new InvalidDataException($"The object has no '{MapSection}' section.");

        var maps = new List<MapSpec>();
        foreach (var sym in elf.Symbols.Where(s => s.SectionIndex == mapSection.Index && s.Name.Length > 0 && s.Size == MapDefSize))
        {
            ReadOnlySpan<byte> d = mapSection.Data.Span.Slice((int)sym.Value, MapDefSize);
            maps.Add(new MapSpec(
                sym.Name,
                (BpfMapType)BinaryPrimitives.ReadUInt32LittleEndian(d),
                BinaryPrimitives.ReadUInt32LittleEndian(d[4..]),
                BinaryPrimitives.ReadUInt32LittleEndian(d[8..]),
                BinaryPrimitives.ReadUInt32LittleEndian(d[12..]),
                BinaryPrimitives.ReadUInt32LittleEndian(d[16..])));
        }

        var programs = new List<ProgramSpec>();
        foreach (var section in elf.Sections.Where(s => s.IsExecutable && s.Data.Length > 0))
        {
            string? function = section.Name.StartsWith("fexit/", StringComparison.Ordinal) ? section.Name["fexit/".Length..] : null;
            var (type, attach) = section.Name switch
            {
                "sockops" => (BpfProgramType.SockOps, BpfAttachType.CgroupSockOps),
                "sk_msg" => (BpfProgramType.SkMsg, BpfAttachType.SkMsgVerdict),
                "cgroup/sock_create" => (BpfProgramType.CgroupSock, BpfAttachType.CgroupInetSockCreate),
                "cgroup/post_bind4" => (BpfProgramType.CgroupSock, BpfAttachType.CgroupInet4PostBind),
                _ when function is not null => (BpfProgramType.Tracing, BpfAttachType.TraceFexit),
                _ => throw new InvalidDataException($"Section '{section.Name}' holds code of a program type this loader does not know."),
            };
            ElfSymbol fn = elf.Symbols.FirstOrDefault(s => s.SectionIndex == section.Index && s.Type == ElfSymbol.Function && s.Value == 0)
                ?? throw new InvalidDataException($"Section '{section.Name}' has no function symbol.");

            var refs = new List<(int, string)>();
            foreach (var rel in elf.Relocations.Where(r => r.TargetSection == section.Index))
            {
                if (rel.Type != 1 /* R_BPF_64_64 */ || rel.Symbol.SectionIndex != mapSection.Index)
                {
                    throw new InvalidDataException(
                        $"{fn.Name}: relocation of type {rel.Type} against '{rel.Symbol.Name}' is not a map reference; only maps in '{MapSection}' are supported.");
                }

                refs.Add(((int)rel.Offset, rel.Symbol.Name));
            }

            programs.Add(new ProgramSpec(fn.Name, section.Name, type, attach, section.Data, refs, function));
        }

        ElfSection license = elf.Section("license") ?? throw new InvalidDataException("The object has no 'license' section.");
        string lic = Encoding.ASCII.GetString(license.Data.Span).TrimEnd('\0');
        string abi = "v1-" + Convert.ToHexStringLower(SHA256.HashData(image.Span))[..12];
        return new BpfObjectSpec(maps, programs, lic, abi);
    }
}
