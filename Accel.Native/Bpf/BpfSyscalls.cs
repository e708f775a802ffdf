using System.Runtime.InteropServices;
using System.Text;
using Accel.Native.Interop;

namespace Accel.Native.Bpf;

/// <summary>
/// Typed bpf(2) commands over <see cref="IKernel"/>. Each builds the <c>union bpf_attr</c> at the
/// offsets of <c>linux/bpf.h</c>, and turns a failure into a <see cref="BpfException"/> (or returns
/// the negative errno where the caller treats failure as an answer rather than an error).
/// </summary>
internal sealed unsafe class BpfSyscalls(IKernel kernel)
{
    private const int AttrSize = 144;

    public IKernel Kernel { get; } = kernel;

    public KernelFd CreateMap(string name, BpfMapType type, uint keySize, uint valueSize, uint maxEntries, uint flags,
        KernelFd? btf = null, uint btfKeyTypeId = 0, uint btfValueTypeId = 0)
    {
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        Put(a, 0, (uint)type);
        Put(a, 4, keySize);
        Put(a, 8, valueSize);
        Put(a, 12, maxEntries);
        Put(a, 16, flags);
        PutName(a, 28, name);
        bool added = false;
        try
        {
            if (btf is not null)
            {
                btf.DangerousAddRef(ref added);
                Put(a, 48, (uint)btf.Value);
                Put(a, 52, btfKeyTypeId);
                Put(a, 56, btfValueTypeId);
            }

            return Fd(Kernel.Bpf(BpfCommand.MapCreate, a), $"BPF_MAP_CREATE {name}");
        }
        finally
        {
            if (added)
            {
                btf!.DangerousRelease();
            }
        }
    }

    /// <summary>0 on success, -ENOENT when the key is absent, another negative errno otherwise.</summary>
    public int TryLookup(KernelFd map, ReadOnlySpan<byte> key, Span<byte> value)
    {
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            return Elem(BpfCommand.MapLookupElem, map, k, v, 0);
        }
    }

    /// <summary>0 on success, a negative errno otherwise.</summary>
    public int TryUpdate(KernelFd map, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags)
    {
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            return Elem(BpfCommand.MapUpdateElem, map, k, v, flags);
        }
    }

    /// <summary>0 on success, a negative errno otherwise.</summary>
    public int TryDelete(KernelFd map, ReadOnlySpan<byte> key)
    {
        fixed (byte* k = key)
        {
            return Elem(BpfCommand.MapDeleteElem, map, k, null, 0);
        }
    }

    /// <summary>0 with the next key written, -ENOENT after the last key.</summary>
    public int TryGetNextKey(KernelFd map, ReadOnlySpan<byte> key, Span<byte> nextKey)
    {
        fixed (byte* k = key)
        fixed (byte* n = nextKey)
        {
            return Elem(BpfCommand.MapGetNextKey, map, key.IsEmpty ? null : k, n, 0);
        }
    }

    public KernelFd LoadBtf(ReadOnlySpan<byte> blob)
    {
        byte[] log = new byte[64 * 1024];
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        fixed (byte* b = blob)
        fixed (byte* l = log)
        {
            Put(a, 0, (ulong)b);
            Put(a, 8, (ulong)l);
            Put(a, 16, (uint)blob.Length);
            Put(a, 20, (uint)log.Length);
            Put(a, 24, 1u);
            int r = Kernel.Bpf(BpfCommand.BtfLoad, a);
            if (r < 0)
            {
                throw new BpfException("BPF_BTF_LOAD", -r, VerifierLog.Tail(log));
            }

            return new KernelFd(Kernel, r);
        }
    }

    public KernelFd LoadProgram(string name, BpfProgramType type, BpfAttachType expectedAttachType,
        ReadOnlySpan<byte> instructions, string license, uint attachBtfId = 0)
    {
        byte[] lic = Encoding.ASCII.GetBytes(license + "\0");
        Span<byte> a = stackalloc byte[AttrSize];
        fixed (byte* insns = instructions)
        fixed (byte* l = lic)
        {
            // First without a log (fast path); on failure again with one, for the exception.
            for (int attempt = 0; ; attempt++)
            {
                byte[] log = attempt == 0 ? [] : new byte[1 << 20];
                fixed (byte* lg = log)
                {
                    a.Clear();
                    Put(a, 0, (uint)type);
                    Put(a, 4, (uint)(instructions.Length / 8));
                    Put(a, 8, (ulong)insns);
                    Put(a, 16, (ulong)l);
                    if (log.Length > 0)
                    {
                        Put(a, 24, 1u);
                        Put(a, 28, (uint)log.Length);
                        Put(a, 32, (ulong)lg);
                    }

                    PutName(a, 48, name);
                    Put(a, 68, (uint)expectedAttachType);
                    Put(a, 108, attachBtfId);
                    int r = Kernel.Bpf(BpfCommand.ProgLoad, a);
                    if (r >= 0)
                    {
                        return new KernelFd(Kernel, r);
                    }

                    // ENOSPC on the second attempt means the log itself overflowed: still report.
                    if (attempt > 0)
                    {
                        throw new BpfProgramLoadException(name, -r, VerifierLog.Tail(log));
                    }
                }
            }
        }
    }

    public void Pin(KernelFd fd, string path)
    {
        int r = PathCommand(BpfCommand.ObjPin, path, fd);
        if (r < 0)
        {
            throw new BpfException($"BPF_OBJ_PIN {path}", -r);
        }
    }

    /// <summary>The pinned object's fd, or a negative errno (-ENOENT when nothing is pinned there).</summary>
    public int TryGetPinned(string path, out KernelFd? fd)
    {
        int r = PathCommand(BpfCommand.ObjGet, path, null);
        fd = r >= 0 ? new KernelFd(Kernel, r) : null;
        return r;
    }

    /// <summary>0 or a negative errno.</summary>
    public int TryAttach(KernelFd program, int targetFd, BpfAttachType type, uint flags)
    {
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        using var guard = new FdGuard(program);
        Put(a, 0, (uint)targetFd);
        Put(a, 4, (uint)program.Value);
        Put(a, 8, (uint)type);
        Put(a, 12, flags);
        return Kernel.Bpf(BpfCommand.ProgAttach, a);
    }

    /// <summary>0 or a negative errno.</summary>
    public int TryDetach(KernelFd program, int targetFd, BpfAttachType type)
    {
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        using var guard = new FdGuard(program);
        Put(a, 0, (uint)targetFd);
        Put(a, 4, (uint)program.Value);
        Put(a, 8, (uint)type);
        return Kernel.Bpf(BpfCommand.ProgDetach, a);
    }

    /// <summary>A link fd, or a negative errno (-EINVAL where the kernel has no links for this attach type).</summary>
    public int TryCreateLink(KernelFd program, int targetFd, BpfAttachType type, out KernelFd? link)
    {
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        using var guard = new FdGuard(program);
        Put(a, 0, (uint)program.Value);
        Put(a, 4, (uint)targetFd);
        Put(a, 8, (uint)type);
        int r = Kernel.Bpf(BpfCommand.LinkCreate, a);
        link = r >= 0 ? new KernelFd(Kernel, r) : null;
        return r;
    }

    /// <summary>Attaches a tracing (fentry/fexit) program to the function it was loaded for: a link fd, or a negative errno.</summary>
    public int TryOpenTracingLink(KernelFd program, out KernelFd? link)
    {
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        using var guard = new FdGuard(program);
        Put(a, 8, (uint)program.Value);
        int r = Kernel.Bpf(BpfCommand.RawTracepointOpen, a);
        link = r >= 0 ? new KernelFd(Kernel, r) : null;
        return r;
    }

    /// <summary>The ids of the programs attached to <paramref name="targetFd"/> for <paramref name="type"/>.</summary>
    public uint[] QueryAttached(int targetFd, BpfAttachType type)
    {
        uint[] ids = new uint[64];
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        fixed (uint* p = ids)
        {
            Put(a, 0, (uint)targetFd);
            Put(a, 4, (uint)type);
            Put(a, 16, (ulong)p);
            Put(a, 24, (uint)ids.Length);
            int r = Kernel.Bpf(BpfCommand.ProgQuery, a);
            if (r < 0)
            {
                throw new BpfException($"BPF_PROG_QUERY {type}", -r);
            }

            uint count = MemoryMarshal.Read<uint>(a[24..]);
            return ids.AsSpan(0, (int)Math.Min(count, (uint)ids.Length)).ToArray();
        }
    }

    /// <summary>The kernel id of a map, program or link: every info struct starts with type, then id. The
    /// buffer is the largest of them, zeroed, which the kernel accepts for all.</summary>
    public uint ObjectId(KernelFd fd)
    {
        Span<byte> info = stackalloc byte[232];
        info.Clear();
        GetInfo(fd, info);
        return MemoryMarshal.Read<uint>(info[4..]);
    }

    /// <summary>BPF_ENABLE_STATS (run time): while the returned descriptor is open, the kernel times every BPF program run
    /// (<see cref="ProgramRunStatistics"/>). It costs two clock reads per run, so only measurements hold it.</summary>
    public KernelFd EnableRunTimeStatistics()
    {
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        Put(a, 0, 0u); // BPF_STATS_RUN_TIME
        int r = Kernel.Bpf(BpfCommand.EnableStats, a);
        if (r < 0)
        {
            throw new BpfException("BPF_ENABLE_STATS", -r);
        }

        return new KernelFd(Kernel, r);
    }

    /// <summary>A program's total run time and number of runs since it was loaded, counted while statistics are enabled
    /// (bpf_prog_info.run_time_ns and run_cnt).</summary>
    public (ulong RunTimeNs, ulong RunCount) ProgramRunStatistics(KernelFd program)
    {
        Span<byte> info = stackalloc byte[232];
        info.Clear();
        GetInfo(program, info);
        return (MemoryMarshal.Read<ulong>(info[192..]), MemoryMarshal.Read<ulong>(info[200..]));
    }

    /// <summary>The cgroup a cgroup link is attached to: its cgroup id, 0 once the kernel has detached it (its
    /// cgroup was released), or null for a link of another kind.</summary>
    public ulong? CgroupOfLink(KernelFd link)
    {
        Span<byte> info = stackalloc byte[232];
        info.Clear();
        GetInfo(link, info);
        const uint cgroupLinkType = 3; // BPF_LINK_TYPE_CGROUP
        return MemoryMarshal.Read<uint>(info) == cgroupLinkType ? MemoryMarshal.Read<ulong>(info[16..]) : null; // bpf_link_info.cgroup.cgroup_id
    }

    /// <summary>Every key of <paramref name="map"/>, in the kernel's order (BPF_MAP_GET_NEXT_KEY from the start).</summary>
    public IEnumerable<byte[]> Keys(KernelFd map, int keySize)
    {
        byte[] key = [];
        byte[] next = new byte[keySize];
        while (TryGetNextKey(map, key, next) == 0)
        {
            yield return key = (byte[])next.Clone();
        }
    }

    /// <summary>BPF_OBJ_GET_INFO_BY_FD into <paramref name="info"/> (bpf_prog_info, bpf_map_info or bpf_link_info).</summary>
    public void GetInfo(KernelFd fd, Span<byte> info)
    {
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        using var guard = new FdGuard(fd);
        fixed (byte* p = info)
        {
            Put(a, 0, (uint)fd.Value);
            Put(a, 4, (uint)info.Length);
            Put(a, 8, (ulong)p);
            int r = Kernel.Bpf(BpfCommand.ObjGetInfoByFd, a);
            if (r < 0)
            {
                throw new BpfException("BPF_OBJ_GET_INFO_BY_FD", -r);
            }
        }
    }

    private int Elem(BpfCommand command, KernelFd map, byte* key, byte* value, ulong flags)
    {
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        using var guard = new FdGuard(map);
        Put(a, 0, (uint)map.Value);
        Put(a, 8, (ulong)key);
        Put(a, 16, (ulong)value);
        Put(a, 24, flags);
        return Kernel.Bpf(command, a);
    }

    private int PathCommand(BpfCommand command, string path, KernelFd? fd)
    {
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        Span<byte> a = stackalloc byte[AttrSize];
        a.Clear();
        using var guard = new FdGuard(fd);
        fixed (byte* pp = p)
        {
            Put(a, 0, (ulong)pp);
            if (fd is not null)
            {
                Put(a, 8, (uint)fd.Value);
            }

            return Kernel.Bpf(command, a);
        }
    }

    private KernelFd Fd(int result, string operation)
        => result < 0 ? throw new BpfException(operation, -result) : new KernelFd(Kernel, result);

    private static void Put<T>(Span<byte> attr, int offset, T value)
        where T : unmanaged
        => MemoryMarshal.Write(attr[offset..], in value);

    private static void PutName(Span<byte> attr, int offset, string name)
    {
        // BPF object names: at most 15 characters of [A-Za-z0-9_.].
        int n = Math.Min(name.Length, 15);
        for (int i = 0; i < n; i++)
        {
            char c = name[i];
            attr[offset + i] = (byte)(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' ? c : '_');
        }
    }

    /// <summary>Keeps a SafeHandle's fd from being closed while its number sits in a bpf_attr.</summary>
    private readonly ref struct FdGuard
    {
        private readonly KernelFd? _fd;

        public FdGuard(KernelFd? fd)
        {
            bool added = false;
            fd?.DangerousAddRef(ref added);
            _fd = added ? fd : null;
        }

        public void Dispose() => _fd?.DangerousRelease();
    }
}
