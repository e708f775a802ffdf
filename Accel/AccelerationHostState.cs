using System.Text;
using Accel.Internal;
using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Interop;
using Accel.Native.Loading;
using Accel.Native.Pinning;

namespace Accel;

/// <summary>One engine instance sharing a fast path: a service on this host.</summary>
/// <param name="Name">Its name (<see cref="AccelerationEngineOptions.ServiceName"/> or the entry assembly's name).</param>
/// <param name="Host">Its host name as it sees it: in a container, the container's or pod's.</param>
/// <param name="Pid">Its process id, in its own pid namespace (in a container, often 1).</param>
/// <param name="Statistics">Its figures since it started.</param>
public sealed record SharedService(string Name, string Host, int Pid, AccelerationStatistics Statistics);

/// <summary>The host-wide fast path of one ABI: the services sharing it and the sockets in it.</summary>
/// <param name="Directory">The pin directory.</param>
/// <param name="IsThisVersion">Made by this library's BPF object (others are only listed).</param>
/// <param name="Sockets">Sockets in the map now (-1 for another version's, which is not read).</param>
/// <param name="Services">The engines that announced themselves and have not stopped.</param>
/// <param name="PeerAddresses">Entries in the host-wide table of possibly same-host peer addresses and ranges
/// (see <see cref="AccelerationEngineOptions.SameHostPeerRanges"/>), which keeps the addresses of containers that
/// are gone.</param>
/// <param name="PeerAddressCapacity">How many entries that table holds (-1 for another version's).</param>
public sealed record SharedFastPath(string Directory, bool IsThisVersion, int Sockets, IReadOnlyList<SharedService> Services,
    int PeerAddresses, int PeerAddressCapacity);

/// <summary>Reads the host-wide state from the pinned objects (needs the same rights as the services: the pin
/// directory is owner-only).</summary>
public static class AccelerationHostState
{
    /// <summary>Every fast path pinned under <paramref name="pinRoot"/>: this version's in full, others by name.</summary>
    public static IReadOnlyList<SharedFastPath> Read(string pinRoot = "/sys/fs/bpf")
    {
        string top = Path.Combine(pinRoot, "accel");
        if (!Directory.Exists(top))
        {
            return [];
        }

        var bpf = new BpfSyscalls(LinuxKernel.Instance);
        string abi = EmbeddedObjects.Accel.Abi;
        var result = new List<SharedFastPath>();
        foreach (string dir in Directory.GetDirectories(top).Order())
        {
            result.Add(Path.GetFileName(dir) == abi ? ReadOne(bpf, dir) : new SharedFastPath(dir, false, -1, [], -1, -1));
        }

        return result;
    }

    private static unsafe SharedFastPath ReadOne(BpfSyscalls bpf, string dir)
    {
        KernelFd Open(string name)
        {
            int r = bpf.TryGetPinned(Path.Combine(dir, name), out KernelFd? fd);
            return r < 0 ? throw new BpfException($"BPF_OBJ_GET {Path.Combine(dir, name)}", -r) : fd!;
        }

        using KernelFd sockhash = Open(AbiNames.SockHash);
        using KernelFd services = Open(AbiNames.Services);
        using KernelFd owners = Open(AbiNames.Owners);
        using KernelFd prefixes = Open(AbiNames.LocalPrefixes);
        int sockets = bpf.Keys(sockhash, sizeof(AccelKey)).Count();
        int addresses = bpf.Keys(prefixes, sizeof(AccelPrefix)).Count();
        int capacity = (int)EmbeddedObjects.Accel.Map(AbiNames.LocalPrefixes).MaxEntries;
        var list = new List<SharedService>();
        foreach (byte[] key in bpf.Keys(services, sizeof(ulong)))
        {
            var service = default(AccelService);
            if (bpf.TryLookup(services, key, new Span<byte>(&service, sizeof(AccelService))) != 0
                || InstanceLeases.IsEnded(bpf.Kernel, dir, BitConverter.ToUInt64(key)))
            {
                continue; // gone, or killed before it could say so (the next service to start removes it)
            }

            string name = Text(new ReadOnlySpan<byte>(service.Name, 32));
            string host = Text(new ReadOnlySpan<byte>(service.Host, 64));
            list.Add(new SharedService(name, host, (int)service.Pid, OwnerStatistics.Read(bpf, owners, key).ToStatistics()));
        }

        return new SharedFastPath(dir, true, sockets, list, addresses, capacity);
    }

    private static string Text(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }
}
