using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Interop;
using Accel.Native.Pinning;

namespace Accel.Internal;

/// <summary>The engine's handle on the pinned maps: typed reads and writes, one syscall each.</summary>
internal sealed class KernelFastPath(BpfSyscalls bpf, PinnedObjectStore store) : IDisposable
{
    public BpfSyscalls Bpf { get; } = bpf;

    public PinnedObjectStore Store { get; } = store;

    public int WriteConfig(int socketFd, ulong owner, uint flags, uint backlogKib)
    {
        var config = new AccelSockConfig { Owner = owner, Flags = flags, BacklogKib = backlogKib };
        return Bpf.TryUpdate(Store.Map(AbiNames.Config), AsBytes(ref socketFd), AsBytes(ref config), BpfFlags.Any);
    }

    public int ReadConfig(int socketFd, out AccelSockConfig config)
    {
        config = default;
        return Bpf.TryLookup(Store.Map(AbiNames.Config), AsBytes(ref socketFd), AsBytes(ref config));
    }

    /// <summary>Puts the process with host id <paramref name="tgid"/> in scope with <paramref name="config"/>.</summary>
    public int WriteScope(uint tgid, AccelSockConfig config)
        => Bpf.TryUpdate(Store.Map(AbiNames.Scope), AsBytes(ref tgid), AsBytes(ref config), BpfFlags.Any);

    public int DeleteScope(uint tgid) => Bpf.TryDelete(Store.Map(AbiNames.Scope), AsBytes(ref tgid));

    public int ReadState(int socketFd, out AccelSockState state)
    {
        state = default;
        return Bpf.TryLookup(Store.Map(AbiNames.State), AsBytes(ref socketFd), AsBytes(ref state));
    }

    /// <summary>Publishes how many bytes the reader of the socket with key <paramref name="key"/> has consumed (a reader
    /// that reports itself: no tracker slot, and the writer's published total is dropped, a lower bound either way).</summary>
    public int WriteConsumed(AccelKey key, ulong totalBytesRead)
    {
        var flow = new AccelFlow { Consumed = totalBytesRead };
        return WriteFlow(key, flow);
    }

    /// <summary>Maps the whole accel_track array, shared and writable (the read tracker's and the report slots' view):
    /// 0, or -errno.</summary>
    public int MapTrack(out nint mapping, out long length)
    {
        length = (long)AccelTrack.Block * AccelTrack.Blocks * sizeof(ulong);
        return Bpf.Kernel.MapShared(Store.Map(AbiNames.Track).Value, length, out mapping);
    }

    public int ReadFlow(AccelKey key, out AccelFlow flow)
    {
        flow = default;
        return Bpf.TryLookup(Store.Map(AbiNames.Consumed), AsBytes(ref key), AsBytes(ref flow));
    }

    /// <summary>Replaces the record of the reader at <paramref name="key"/>, only while it exists (a closed socket's
    /// record is not brought back).</summary>
    public int WriteFlow(AccelKey key, AccelFlow flow)
        => Bpf.TryUpdate(Store.Map(AbiNames.Consumed), AsBytes(ref key), AsBytes(ref flow), BpfFlags.Exist);

    /// <summary>Takes the socket with key <paramref name="key"/> out of the sockhash: the kernel drops its psock and
    /// gives it back plain TCP (and discards what waits in its redirected queue: see
    /// <see cref="SocketRegistration.TryLeaveFastPath"/>).</summary>
    public int RemoveFromSockhash(AccelKey key) => Bpf.TryDelete(Store.Map(AbiNames.SockHash), AsBytes(ref key));

    /// <summary>Reads the socket's state, then <see cref="TryLeave(int, AccelSockState, AccelKey)"/>.</summary>
    public bool TryLeave(int socketFd, AccelKey key)
        => ReadState(socketFd, out AccelSockState state) == 0 && TryLeave(socketFd, state, key);

    /// <summary>
    /// Takes the socket at <paramref name="socketFd"/>, in the map under <paramref name="key"/>, out of the map when its
    /// <paramref name="state"/>, read just before through the same descriptor, says that its first send found no peer (a
    /// same-host peer without the library): in the map it would pay the sk_msg path on every send for a verdict of TCP.
    /// False, and the socket stays, when leaving could lose a byte:
    /// <list type="bullet">
    /// <item>its peer is in the map. The peer's sock_ops callback checks this socket's accel_consumed entry after inserting
    /// itself, and the first send removes that entry after its redirect found no peer; when the two interleave (the peer
    /// inserted between the failed redirect and the removal, and checking before it), the peer stays in the map and
    /// redirects here, and a redirect landing between the queue check below and the removal would be discarded with the
    /// psock. The socket stays: its sends keep the verdict TCP, the peer's come in redirected. A peer inserted after this
    /// lookup finds no entry and leaves again before it sends (accel_sockops).</item>
    /// <item>redirected bytes wait in its queue (a peer that wrote and closed before the first send): FIONREAD reports that
    /// queue for a socket in the map (tcp_bpf's ioctl), and leaving would discard it. With the peer out of the map,
    /// nothing can be added to it any more.</item>
    /// <item>its own accel_consumed entry is still there: the first send has decided but not yet removed it (a look from
    /// another thread, such as the read tracker's). Until it is gone, a peer inserted from now on would stay in the map
    /// and could redirect here after the checks above.</item>
    /// </list>
    /// Also false when the descriptor holds another socket by now (its key differs) or the socket decided otherwise. The
    /// verdict is final once decided, so the state read before these checks still holds after them.
    /// </summary>
    public bool TryLeave(int socketFd, AccelSockState state, AccelKey key)
    {
        if (state.Verdict != AccelSockState.VerdictTcp || state.Reason != AccelSockState.ReasonPeerAbsent
            || !AsBytes(ref state.Key).SequenceEqual(AsBytes(ref key)))
        {
            return false;
        }

        if (ReadFlow(key, out _) != -Errno.ENOENT || InSockhash(state.Peer) || Bpf.Kernel.BytesToRead(socketFd, out int unread) < 0 || unread != 0)
        {
            return false;
        }

        return RemoveFromSockhash(key) == 0;
    }

    /// <summary>Whether a socket is in the sockhash under <paramref name="key"/> (a lookup from user space returns the
    /// socket's cookie); false on any error.</summary>
    public bool InSockhash(AccelKey key)
    {
        ulong cookie = 0;
        return Bpf.TryLookup(Store.Map(AbiNames.SockHash), AsBytes(ref key), AsBytes(ref cookie)) == 0;
    }

    public AccelOwnerStats ReadOwner(ulong owner) => OwnerStatistics.Read(Bpf, Store.Map(AbiNames.Owners), AsBytes(ref owner));

    public void ForgetOwner(ulong owner) => Store.ForgetInstance(owner);

    /// <summary>Announces this engine instance as a service sharing the map (name, host name and pid, for the
    /// host-wide view).</summary>
    public unsafe void Announce(ulong owner, string name, string host, int pid)
    {
        var service = new AccelService { Pid = (uint)pid };
        CopyTruncated(name, new Span<byte>(service.Name, 32));
        CopyTruncated(host, new Span<byte>(service.Host, 64));
        Bpf.TryUpdate(Store.Map(AbiNames.Services), AsBytes(ref owner), AsBytes(ref service), BpfFlags.Any);
    }

    /// <summary>Adds <paramref name="ranges"/> to the host-wide table of possibly same-host peers, each claimed by this
    /// instance so that it leaves the table when no running instance needs it; returns those that did not fit (the
    /// table is full).</summary>
    public unsafe IReadOnlyList<IPNetwork> PublishPeerRanges(IReadOnlyList<IPNetwork> ranges)
    {
        var byKey = new Dictionary<string, IPNetwork>();
        var keys = new List<byte[]>();
        foreach (IPNetwork range in ranges)
        {
            var prefix = new AccelPrefix { PrefixLength = (uint)range.PrefixLength };
            range.BaseAddress.GetAddressBytes().CopyTo(new Span<byte>(prefix.Address, 16));
            byte[] key = AsBytes(ref prefix).ToArray();
            if (byKey.TryAdd(Convert.ToHexString(key), range))
            {
                keys.Add(key);
            }
        }

        IReadOnlyList<byte[]> refused = Store.PublishPeerEntries(keys, key =>
        {
            uint one = 1;
            int r = Bpf.TryUpdate(Store.Map(AbiNames.LocalPrefixes), key, AsBytes(ref one), BpfFlags.Any);
            if (r < 0 && -r != Errno.ENOSPC && -r != Errno.E2BIG)
            {
                throw new BpfException($"BPF_MAP_UPDATE_ELEM {AbiNames.LocalPrefixes} {byKey[Convert.ToHexString(key)]}", -r);
            }

            return r >= 0;
        });
        return [.. refused.Select(key => byKey[Convert.ToHexString(key)])];
    }

    public void Dispose() => Store.Dispose();

    /// <summary>UTF-8, cut to leave a terminating NUL and never inside a character.</summary>
    private static void CopyTruncated(string text, Span<byte> field)
    {
        var encoder = System.Text.Encoding.UTF8.GetEncoder();
        encoder.Convert(text, field[..^1], flush: true, out _, out _, out _);
    }

    private static Span<byte> AsBytes<T>(ref T value)
        where T : unmanaged
        => MemoryMarshal.AsBytes(new Span<T>(ref value));
}
