using System.Runtime.InteropServices;
using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Btf;
using Accel.Native.Interop;
using Accel.Native.Loading;
using Accel.Native.Probe;

namespace Accel.Native.Pinning;

/// <summary>
/// The host-wide objects of one ABI, pinned in <c>{pinRoot}/accel/{abi}/</c>: the first process on the
/// host creates and pins them, every later one opens them, so that all services share one SOCKHASH.
/// The directories are owner-only (0700); a directory or pin owned by another user, or reachable by
/// group or others, is refused, and so is a pinned object that does not match the embedded object.
/// A lock on the directory keeps two starting processes from creating twice.
/// </summary>
internal sealed class PinnedObjectStore : IDisposable
{
    private const int PrivateModeMask = 0x3F; // group and other bits: 077

    private readonly BpfSyscalls _bpf;
    private readonly Dictionary<string, KernelFd> _maps = new();
    private readonly Dictionary<string, KernelFd> _programs = new();
    private KernelFd? _lease;
    private ulong _instance;
    private bool _claims;

    private PinnedObjectStore(BpfSyscalls bpf, string directory)
    {
        _bpf = bpf;
        Directory = directory;
    }

    /// <summary>The versioned pin directory.</summary>
    public string Directory { get; }

    /// <summary>This process created the objects (it was the first on the host for this ABI).</summary>
    public bool Created { get; private set; }

    /// <summary>The receivers' consumption of redirected bytes is tracked (the fexit program runs), so the
    /// backlog bound is measured against what is really unread. Without it (no CAP_PERFMON, or no BPF
    /// trampoline) each direction is redirected for its first bound's worth of bytes only.</summary>
    public bool TracksConsumption { get; private set; }

    /// <summary>Why consumption is not tracked, when it is not.</summary>
    public string? ConsumptionTrackingProblem { get; private set; }

    public KernelFd Map(string name) => _maps[name];

    public KernelFd Program(string name) => _programs[name];

    /// <summary>Opens the pinned objects of <paramref name="spec"/>, creating and pinning them if this process
    /// is the first. With <paramref name="instance"/>, also forgets the instances that ended without stopping
    /// and takes a lease for this one (see <see cref="InstanceLeases"/>).</summary>
    public static PinnedObjectStore OpenOrCreate(BpfSyscalls bpf, BpfObjectSpec spec, string pinRoot, ulong? instance = null)
    {
        string top = Path.Combine(pinRoot, "accel");
        string dir = Path.Combine(top, spec.Abi);
        EnsurePrivateDirectory(bpf.Kernel, top);
        EnsurePrivateDirectory(bpf.Kernel, dir);

        var store = new PinnedObjectStore(bpf, dir);
        try
        {
            using (PinDirectoryLock.Take(bpf.Kernel, dir))
            {
                foreach (MapSpec map in spec.Maps)
                {
                    store._maps[map.Name] = store.OpenOrCreateMap(map);
                }

                foreach (ProgramSpec program in spec.Programs.Where(p => p.Type != BpfProgramType.Tracing))
                {
                    store._programs[program.Name] = store.OpenOrLoadProgram(program, spec.License);
                }

                foreach (ProgramSpec program in spec.Programs.Where(p => p.Type == BpfProgramType.Tracing))
                {
                    store.TryLoadAndAttachTracing(program, spec.License);
                }

                string msgProgram = spec.Programs.Single(p => p.Type == BpfProgramType.SkMsg).Name;
                string sockhash = spec.Maps.Single(m => m.Type == BpfMapType.SockHash).Name;
                store.AttachMessageProgram(msgProgram, sockhash);
                store.RefuseForeignPrograms(msgProgram, sockhash);
                store.RemoveDetachedCgroupLinks();
                if (instance is ulong owner)
                {
                    store.EndedInstancesForgotten = InstanceLeases.SweepEnded(bpf.Kernel, dir, ended =>
                    {
                        store.ForgetInstance(ended);
                        store.RemovedPeerEntries += store.RemoveUnclaimedPeerEntries(InstanceLeases.PathOf(dir, ended));
                    });
                    store._lease = InstanceLeases.Hold(bpf.Kernel, dir, owner);
                    store._instance = owner;
                    store._claims = store._lease is not null && PeerClaims.Begin(InstanceLeases.PathOf(dir, owner));
                }
            }

            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Attaches the sock_ops program to the cgroup v2 directory <paramref name="cgroupPath"/>, once:
    /// a program already attached there is reused. The link is pinned next to the maps so that it
    /// outlives this process, like the maps.</summary>
    public void AttachSockOps(string programName, string cgroupPath)
        => AttachToCgroup(programName, BpfAttachType.CgroupSockOps, cgroupPath, "sock_ops");

    /// <summary>Attaches <paramref name="programName"/> to the cgroup v2 directory <paramref name="cgroupPath"/> at
    /// <paramref name="attachType"/>, once (a program already attached there is reused), through a link pinned as
    /// <c>link_cgroup_{inode}</c> (sock_ops) or <c>link_cgroup_{inode}_{what}</c>.</summary>
    public void AttachToCgroup(string programName, BpfAttachType attachType, string cgroupPath, string what)
    {
        IKernel k = _bpf.Kernel;
        int r = k.Stat(cgroupPath, out FileFacts cg);
        int cgFd = r == 0 ? k.Open(cgroupPath, FileConstants.OpenDirectory) : r;
        if (cgFd < 0)
        {
            throw new UnavailableException(Unavailability.CgroupUnavailable,
                $"Cannot open the cgroup v2 directory {cgroupPath}: {Errno.Describe(-cgFd)}. Set the CgroupPath option to this process's cgroup v2 directory.");
        }

        using var cgroup = new KernelFd(k, cgFd);
        KernelFd program = _programs[programName];
        uint id = _bpf.ObjectId(program);
        uint[] attached;
        try
        {
            attached = _bpf.QueryAttached(cgFd, attachType);
        }
        catch (BpfException e)
        {
            throw new UnavailableException(Unavailability.CgroupUnavailable, $"Cannot query the {what} programs attached to {cgroupPath}: {e.Message}.", e);
        }

        if (attached.Contains(id))
        {
            return;
        }

        string linkPin = Path.Combine(Directory, attachType == BpfAttachType.CgroupSockOps ? $"link_cgroup_{cg.Inode}" : $"link_cgroup_{cg.Inode}_{what}");
        int l = _bpf.TryCreateLink(program, cgFd, attachType, out KernelFd? link);
        if (l >= 0)
        {
            using (link)
            {
                // A pin left by an earlier cgroup with the same inode number is stale: ours to replace.
                File.Delete(linkPin);
                _bpf.Pin(link!, linkPin);
            }

            return;
        }

        int a = _bpf.TryAttach(program, cgFd, attachType, BpfFlags.AllowMulti);
        if (a < 0 && -a != Errno.EEXIST)
        {
            throw new UnavailableException(Unavailability.LoadFailed,
                $"Attaching the {what} program to {cgroupPath} failed: link {Errno.Describe(-l)}, attach {Errno.Describe(-a)}.");
        }
    }

    /// <summary>How many instances that ended without stopping (killed) this process forgot when it opened the store.</summary>
    public int EndedInstancesForgotten { get; private set; }

    /// <summary>Removes an instance's entries from the host-wide view: its service record and its figures.</summary>
    public void ForgetInstance(ulong owner)
    {
        Span<byte> key = stackalloc byte[sizeof(ulong)];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(key, owner);
        foreach (string map in new[] { AbiNames.Owners, AbiNames.Services })
        {
            if (_maps.TryGetValue(map, out KernelFd? fd))
            {
                _bpf.TryDelete(fd, key);
            }
        }

        // Its process scope: left behind, it would opt in the sockets of whichever process gets its pid next.
        if (_maps.TryGetValue(AbiNames.Scope, out KernelFd? scope))
        {
            Span<byte> config = stackalloc byte[Marshal.SizeOf<AccelSockConfig>()];
            foreach (byte[] tgid in _bpf.Keys(scope, sizeof(uint)).ToList())
            {
                if (_bpf.TryLookup(scope, tgid, config) == 0 && MemoryMarshal.Read<AccelSockConfig>(config).Owner == owner)
                {
                    _bpf.TryDelete(scope, tgid);
                }
            }
        }
    }

    /// <summary>How many entries of the table of possibly same-host peers this process removed when it opened the
    /// store: entries that only instances that ended without stopping had published.</summary>
    public int RemovedPeerEntries { get; private set; }

    /// <summary>Inserts each of <paramref name="keys"/> into the host-wide table of possibly same-host peers with
    /// <paramref name="insert"/> (false: the table is full), claiming it for this instance first, under the pin
    /// directory's lock (see <see cref="PeerClaims"/>). Returns the keys that were not inserted.</summary>
    public IReadOnlyList<byte[]> PublishPeerEntries(IEnumerable<byte[]> keys, Func<byte[], bool> insert)
    {
        var refused = new List<byte[]>();
        using PinDirectoryLock directoryLock = PinDirectoryLock.Take(_bpf.Kernel, Directory);
        string lease = InstanceLeases.PathOf(Directory, _instance);
        foreach (byte[] key in keys)
        {
            // Unclaimed (no lease, or the claim could not be made), the entry stays after this instance, as before claims.
            bool claimed = _claims && PeerClaims.Claim(lease, key);
            if (!insert(key))
            {
                refused.Add(key);
                if (claimed)
                {
                    PeerClaims.Unclaim(lease, key);
                }
            }
        }

        return refused;
    }

    /// <summary>Removes from the table of possibly same-host peers the entries that the instance whose lease directory
    /// is <paramref name="lease"/> claimed and no other running instance claims; nothing while a running instance does
    /// not claim. Called under the pin directory's lock. Returns how many it removed.</summary>
    private int RemoveUnclaimedPeerEntries(string lease)
    {
        if (!_maps.TryGetValue(AbiNames.LocalPrefixes, out KernelFd? table)
            || PeerClaims.OfRunningInstances(_bpf.Kernel, Directory, except: lease) is not { } claimedByOthers)
        {
            return 0;
        }

        int removed = 0;
        foreach (byte[] key in PeerClaims.Of(lease))
        {
            if (key.Length == Marshal.SizeOf<AccelPrefix>() && !claimedByOthers.Contains(Convert.ToHexString(key)) && _bpf.TryDelete(table, key) == 0)
            {
                removed++;
            }
        }

        return removed;
    }

    /// <summary>How many pinned cgroup links of removed cgroups this process unpinned when it opened the store.</summary>
    public int RemovedDetachedLinks { get; private set; }

    /// <summary>Unpins the sock_ops links of cgroups that are gone. The kernel detaches a cgroup link when its
    /// cgroup is released, but the pin keeps the dead link forever: on a node where containers come and go,
    /// one pin per container would pile up. A detached link reports cgroup id 0 and can never attach again.</summary>
    private void RemoveDetachedCgroupLinks()
    {
        string[] pins;
        try
        {
            pins = System.IO.Directory.GetFiles(Directory, "link_cgroup_*");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (string pin in pins)
        {
            if (_bpf.TryGetPinned(pin, out KernelFd? link) < 0)
            {
                continue;
            }

            using (link)
            {
                if (_bpf.CgroupOfLink(link!) == 0)
                {
                    File.Delete(pin);
                    RemovedDetachedLinks++;
                }
            }
        }
    }

    public void Dispose()
    {
        if (_lease is not null)
        {
            ReleaseLease(_lease);
            _lease = null;
        }

        foreach (KernelFd fd in _maps.Values.Concat(_programs.Values))
        {
            fd.Dispose();
        }
    }

    /// <summary>Ends this instance's lease, first taking out of the table of same-host peers what only it published, under
    /// the pin directory's lock (so that no instance starting meanwhile publishes, or sweeps, in between).</summary>
    private void ReleaseLease(KernelFd lease)
    {
        PinDirectoryLock? directoryLock = null;
        try
        {
            directoryLock = PinDirectoryLock.Take(_bpf.Kernel, Directory);
            RemoveUnclaimedPeerEntries(InstanceLeases.PathOf(Directory, _instance));
        }
        catch (Exception e) when (e is UnavailableException or IOException or UnauthorizedAccessException)
        {
            // The pin directory is gone or cannot be locked: its entries are not this instance's to look after any more.
        }
        finally
        {
            InstanceLeases.Release(lease, Directory, _instance);
            directoryLock?.Dispose();
        }
    }

    private KernelFd OpenOrCreateMap(MapSpec spec)
    {
        string pin = Path.Combine(Directory, spec.Name);
        KernelFd? fd = OpenPinned(pin);
        if (fd is not null)
        {
            VerifyMap(fd, spec, pin);
            return fd;
        }

        KernelFd created;
        if (spec.NeedsBtf)
        {
            using KernelFd btf = _bpf.LoadBtf(BtfBuilder.ForStorageMap(spec.ValueSize));
            created = _bpf.CreateMap(spec.Name, spec.Type, spec.KeySize, spec.ValueSize, spec.MaxEntries, spec.Flags,
                btf, BtfBuilder.IntTypeId, BtfBuilder.ValueTypeId);
        }
        else
        {
            created = _bpf.CreateMap(spec.Name, spec.Type, spec.KeySize, spec.ValueSize, spec.MaxEntries, spec.Flags);
        }

        _bpf.Pin(created, pin);
        Created = true;
        return created;
    }

    private KernelFd OpenOrLoadProgram(ProgramSpec spec, string license)
    {
        string pin = Path.Combine(Directory, spec.Name);
        KernelFd? fd = OpenPinned(pin);
        if (fd is not null)
        {
            VerifyProgram(fd, spec, pin);
            return fd;
        }

        var fds = _maps.ToDictionary(m => m.Key, m => m.Value.Value);
        KernelFd loaded = _bpf.LoadProgram(spec.Name, spec.Type, spec.AttachType, spec.Relocate(fds), license);
        _bpf.Pin(loaded, pin);
        return loaded;
    }

    private void TryLoadAndAttachTracing(ProgramSpec spec, string license)
    {
        string linkPin = Path.Combine(Directory, "link_" + spec.Name);
        try
        {
            KernelFd? existing = OpenPinned(linkPin);
            if (existing is not null)
            {
                existing.Dispose();
                TracksConsumption = true;
                return;
            }

            // A kernel that refuses tracing programs (no CAP_PERFMON, lockdown, a security module) refuses them before it
            // looks at what they would attach to, and one that takes them refuses a load naming nothing with EINVAL. Asked
            // first, this spares every engine on such a host reading the kernel's BTF (5 MB, about 30 ms of its start) for a
            // load that fails; the refusal throws here, as the real load would.
            var fds = _maps.ToDictionary(m => m.Key, m => m.Value.Value);
            byte[] instructions = spec.Relocate(fds);
            try
            {
                _bpf.LoadProgram(spec.Name, spec.Type, spec.AttachType, instructions, license).Dispose();
            }
            catch (BpfException e) when (e.Errno == Errno.EINVAL)
            {
            }

            byte[] vmlinux;
            try
            {
                vmlinux = File.ReadAllBytes(KernelBtf.VmlinuxPath);
            }
            catch (IOException e)
            {
                ConsumptionTrackingProblem = $"the kernel exposes no BTF at {KernelBtf.VmlinuxPath} ({e.Message})";
                return;
            }

            uint? btfId = KernelBtf.FindFunction(vmlinux, spec.AttachFunction!);
            if (btfId is null)
            {
                ConsumptionTrackingProblem = $"the kernel has no function {spec.AttachFunction} to trace";
                return;
            }

            using KernelFd program = _bpf.LoadProgram(spec.Name, spec.Type, spec.AttachType, instructions, license, btfId.Value);
            int r = _bpf.TryOpenTracingLink(program, out KernelFd? link);
            if (r < 0)
            {
                ConsumptionTrackingProblem = $"attaching fexit/{spec.AttachFunction} failed: {Errno.Describe(-r)}";
                return;
            }

            using (link)
            {
                _bpf.Pin(link!, linkPin);
            }

            TracksConsumption = true;
        }
        catch (BpfException e)
        {
            ConsumptionTrackingProblem = e.Errno == Errno.EPERM && !Probe.Capabilities.OfThisProcess().Has(Probe.Capabilities.Perfmon)
                ? "CAP_PERFMON is missing (tracing programs need it)"
                : e.Message;
        }
    }

    private void AttachMessageProgram(string programName, string mapName)
    {
        string pin = Path.Combine(Directory, "link_sk_msg");
        KernelFd? existing = OpenPinned(pin);
        if (existing is not null)
        {
            existing.Dispose();
            return;
        }

        KernelFd program = _programs[programName];
        KernelFd map = _maps[mapName];
        int l = _bpf.TryCreateLink(program, map.Value, BpfAttachType.SkMsgVerdict, out KernelFd? link);
        if (l >= 0)
        {
            using (link)
            {
                _bpf.Pin(link!, pin);
            }

            return;
        }

        if (-l == Errno.EBUSY)
        {
            throw new UnavailableException(Unavailability.IncompatiblePinnedObjects,
                $"Another sk_msg program is already attached to {Path.Combine(Directory, mapName)} without this library's link: refusing to share it. Remove {Directory} once no service uses it.");
        }

        // Kernels before 6.10 have no sockmap links: attach directly (it lasts as long as the map).
        int a = _bpf.TryAttach(program, map.Value, BpfAttachType.SkMsgVerdict, 0);
        if (a < 0)
        {
            throw new UnavailableException(Unavailability.LoadFailed,
                $"Attaching the sk_msg program to the sockhash failed: link {Errno.Describe(-l)}, attach {Errno.Describe(-a)}.");
        }
    }

    /// <summary>Only this library's sk_msg program may run on the map: anything else attached to it (another
    /// sk_msg program, or stream parser/verdict programs that see every received byte) was put there by someone
    /// else, and the fast path is not shared with it.</summary>
    private void RefuseForeignPrograms(string programName, string mapName)
    {
        uint ours = _bpf.ObjectId(_programs[programName]);
        KernelFd map = _maps[mapName];
        foreach (BpfAttachType type in new[] { BpfAttachType.SkMsgVerdict, BpfAttachType.SkSkbStreamParser, BpfAttachType.SkSkbStreamVerdict, BpfAttachType.SkSkbVerdict })
        {
            uint[] attached;
            try
            {
                attached = _bpf.QueryAttached(map.Value, type);
            }
            catch (BpfException e) when (e.Errno is Errno.EINVAL or Errno.EOPNOTSUPP)
            {
                return; // kernels before 5.19 cannot list a sockmap's programs
            }

            uint foreign = attached.FirstOrDefault(id => id != ours);
            if (foreign != 0)
            {
                throw new UnavailableException(Unavailability.IncompatiblePinnedObjects,
                    $"A program that is not this library's (id {foreign}, attach type {type}) is attached to {Path.Combine(Directory, mapName)}: it would see or steer the connections' bytes, so the fast path is not shared with it. Find its owner with 'bpftool prog show id {foreign}'; remove {Directory} once no service uses it.");
            }
        }
    }

    private KernelFd? OpenPinned(string pin)
    {
        int r = _bpf.Kernel.Stat(pin, out FileFacts facts);
        if (r == -Errno.ENOENT)
        {
            return null;
        }

        if (r < 0)
        {
            throw new UnavailableException(Unavailability.UnsafePinnedObjects, $"Cannot inspect pinned object {pin}: {Errno.Describe(-r)}.");
        }

        CheckPrivate(_bpf.Kernel, pin, facts);
        int g = _bpf.TryGetPinned(pin, out KernelFd? fd);
        if (g < 0)
        {
            throw new UnavailableException(Unavailability.UnsafePinnedObjects, $"Cannot open pinned object {pin}: {Errno.Describe(-g)}.");
        }

        return fd;
    }

    private void VerifyMap(KernelFd fd, MapSpec spec, string pin)
    {
        Span<byte> info = stackalloc byte[88];
        info.Clear();
        _bpf.GetInfo(fd, info);
        var found = (Type: MemoryMarshal.Read<uint>(info), Key: MemoryMarshal.Read<uint>(info[8..]), Value: MemoryMarshal.Read<uint>(info[12..]),
            Max: MemoryMarshal.Read<uint>(info[16..]), Flags: MemoryMarshal.Read<uint>(info[20..]));
        if (found != ((uint)spec.Type, spec.KeySize, spec.ValueSize, spec.MaxEntries, spec.Flags))
        {
            fd.Dispose();
            throw new UnavailableException(Unavailability.IncompatiblePinnedObjects,
                $"Pinned map {pin} is (type {found.Type}, key {found.Key} B, value {found.Value} B, max {found.Max}, flags 0x{found.Flags:x}), but this library expects (type {(uint)spec.Type}, key {spec.KeySize} B, value {spec.ValueSize} B, max {spec.MaxEntries}, flags 0x{spec.Flags:x}). It was not made by this library version; remove {Directory} once no service uses it.");
        }
    }

    private void VerifyProgram(KernelFd fd, ProgramSpec spec, string pin)
    {
        uint[] mapIds = new uint[16];
        Span<byte> info = stackalloc byte[232];
        info.Clear();
        unsafe
        {
            fixed (uint* ids = mapIds)
            {
                MemoryMarshal.Write(info[52..], (uint)mapIds.Length);
                MemoryMarshal.Write(info[56..], (ulong)ids);
                _bpf.GetInfo(fd, info);
            }
        }

        uint type = MemoryMarshal.Read<uint>(info);
        uint count = Math.Min(MemoryMarshal.Read<uint>(info[52..]), (uint)mapIds.Length);
        var ours = _maps.Values.Select(_bpf.ObjectId).ToHashSet();
        if (type != (uint)spec.Type || mapIds.Take((int)count).Any(id => !ours.Contains(id)))
        {
            fd.Dispose();
            throw new UnavailableException(Unavailability.IncompatiblePinnedObjects,
                $"Pinned program {pin} is not this library's {spec.Name} over the maps in {Directory}; remove {Directory} once no service uses it.");
        }
    }

    private static void EnsurePrivateDirectory(IKernel k, string dir)
    {
        int r = k.Stat(dir, out FileFacts facts);
        if (r == -Errno.ENOENT)
        {
            try
            {
                if (OperatingSystem.IsWindows())
                {
                    throw new PlatformNotSupportedException("Pinned BPF objects exist only on Linux.");
                }

                System.IO.Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UnavailableException(Unavailability.BpffsUnavailable,
                    $"Cannot create the pin directory {dir}: {e.Message}. Check that the pin root is a writable bpffs mount.", e);
            }

            r = k.Stat(dir, out facts);
        }

        if (r == -Errno.EACCES)
        {
            throw new UnavailableException(Unavailability.UnsafePinnedObjects,
                $"The pin directory {dir} is not reachable by this process (uid {k.EffectiveUserId}): it belongs to another user. Run every service that shares {dir} as the same user, or use another pin root.");
        }

        if (r < 0)
        {
            throw new UnavailableException(Unavailability.BpffsUnavailable, $"Cannot inspect the pin directory {dir}: {Errno.Describe(-r)}.");
        }

        if (!facts.IsDirectory)
        {
            throw new UnavailableException(Unavailability.UnsafePinnedObjects, $"{dir} exists and is not a directory.");
        }

        CheckPrivate(k, dir, facts);
    }

    private static void CheckPrivate(IKernel k, string path, FileFacts facts)
    {
        uint me = k.EffectiveUserId;
        if (facts.OwnerUid != me)
        {
            throw new UnavailableException(Unavailability.UnsafePinnedObjects,
                $"{path} belongs to uid {facts.OwnerUid}, not to this process (uid {me}): refusing to share a fast path with another user. Run every service that shares {path} as the same user, or use another pin root.");
        }

        if ((facts.Mode & PrivateModeMask) != 0)
        {
            throw new UnavailableException(Unavailability.UnsafePinnedObjects,
                $"{path} has mode {Convert.ToString(facts.Mode & 0xFFF, 8)}: other users could reach the fast path through it. Make it owner-only (chmod go-rwx) or remove it once no service uses it.");
        }
    }
}
