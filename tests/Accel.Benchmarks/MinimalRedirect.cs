using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Accel.Native.Bpf;
using Accel.Native.Interop;

namespace Accel.Benchmarks;

/// <summary>
/// The kernel's floor for a key-based redirect on this machine, measured beside the library: an sk_msg program of
/// nineteen instructions on a sockhash of its own, keyed by ports, that redirects to its peer's receive queue and does
/// nothing else (no socket storage, no statistics, no decision, no fallback; not safe for real traffic: a miss drops
/// the message, and nothing bounds the receiver's queue). Its verdict covers the next <see cref="WindowBytes"/> of the
/// socket's sends (<c>bpf_msg_apply_bytes</c>), so the program runs once per window and the kernel reuses its
/// redirect for every send in between: measured, that gains one to two more points of a small request's latency than a
/// program that runs for every send. Its round trips against plain TCP are the most any sk_msg redirect can gain
/// here: the ceilings of the raw round-trip and HTTP targets. Built with a window of 0 it runs for every send, and its
/// run time is the least any redirecting program can cost (the program-cost target's ceiling).
/// A socket's key is its local port in the upper half and its remote port in the lower (unique on loopback); the
/// program redirects to the key with the two swapped. <see cref="AttachToCgroup"/> adds a sock_ops program that puts
/// the connections of given ports in the sockhash as they are established, so that HTTP runs through it too
/// (<see cref="Http.ModeClients"/>'s <c>floor</c> and <c>factory-floor</c> modes).
/// </summary>
internal sealed class MinimalRedirect : IDisposable
{
    private readonly BpfSyscalls _bpf = new(LinuxKernel.Instance);
    private readonly KernelFd _map;
    private readonly KernelFd _program;
    private KernelFd? _sockOps;
    private KernelFd? _link;
    private readonly List<Socket> _clients = new();

    /// <summary>What one verdict covers: with 1 KiB messages the program runs once in 64 sends, and a 64 KiB message (the
    /// block Kestrel writes from with the library) takes one run.</summary>
    public const int WindowBytes = 64 * 1024;

    /// <param name="windowBytes">What each verdict covers; 0: the program runs for every send.</param>
    public MinimalRedirect(int windowBytes = WindowBytes)
    {
        // 8-byte values: the syscall's lookup of a sockhash answers with the socket's cookie, and only into 8 bytes.
        _map = _bpf.CreateMap("accel_minimal", BpfMapType.SockHash, sizeof(uint), sizeof(ulong), 4096, 0);
        try
        {
            _program = _bpf.LoadProgram("accel_minimal", BpfProgramType.SkMsg, BpfAttachType.SkMsgVerdict, Instructions(_map.Value, windowBytes), "Dual MIT/GPL");
            int r = _bpf.TryAttach(_program, _map.Value, BpfAttachType.SkMsgVerdict, 0);
            if (r < 0)
            {
                throw new BpfException("BPF_PROG_ATTACH (minimal sk_msg redirect)", -r);
            }
        }
        catch
        {
            _program?.Dispose();
            _map.Dispose();
            throw;
        }
    }

    /// <summary>A loopback pair, neither end opted in to the library, both in this program's sockhash.</summary>
    public BenchPair CreatePair(AccelerationEngine engine)
    {
        BenchPair pair = BenchPair.Create(Transport.Tcp, engine);
        foreach (Socket s in new[] { pair.A, pair.B })
        {
            int r = _bpf.TryUpdate(_map, BitConverter.GetBytes(Key(s)), BitConverter.GetBytes((long)s.Handle), BpfFlags.Any);
            if (r < 0)
            {
                pair.Dispose();
                throw new BpfException("BPF_MAP_UPDATE_ELEM (a socket into the minimal redirect's sockhash)", -r);
            }
        }

        // A lookup that missed would drop the message (the helper's verdict is SK_DROP) and a round trip would wait
        // for ever: a receive timeout turns that into an error.
        pair.A.ReceiveTimeout = pair.B.ReceiveTimeout = 10_000;
        return pair;
    }

    /// <summary>Throws unless the pair's bytes went by the redirect: TCP's own count of bytes received
    /// (tcpi_bytes_received) stays at what the pair received before it joined the map (nothing), whatever it moved
    /// since. What the benchmark's bulk rows lacked until 2026-12-03: a check that a fast-path figure is one.</summary>
    public static void EnsureRedirected(BenchPair pair, long moved)
    {
        foreach (Socket s in new[] { pair.A, pair.B })
        {
            long tcp = TcpBytesReceived(s);
            if (tcp > 0)
            {
                throw new InvalidOperationException($"the minimal redirect's pair received {tcp} of {moved} bytes through TCP");
            }
        }
    }

    /// <summary>Throws unless the client sockets of <see cref="WaitForBothEndsAsync"/> that are still open (at least
    /// one) received nothing through TCP and had nothing but their SYN acknowledged by it.</summary>
    public void EnsureClientsRedirected()
    {
        int open = 0;
        lock (_clients)
        {
            foreach (Socket s in _clients)
            {
                long received, acked;
                try
                {
                    (received, acked) = (TcpBytesReceived(s), TcpBytesAcked(s));
                }
                catch (ObjectDisposedException)
                {
                    continue;
                }

                open++;
                if (received > 0 || acked > 1)
                {
                    throw new InvalidOperationException($"a connection of the minimal redirect moved bytes through TCP: {received} received, {acked} acknowledged");
                }
            }
        }

        if (open == 0)
        {
            throw new InvalidOperationException("no connection of the minimal redirect is open to check");
        }
    }

    /// <summary>The program's ns per message over <paramref name="roundTrips"/> 64 B round trips on
    /// <paramref name="pair"/> (<see cref="ProgramFloor.NsPerMessage"/>).</summary>
    public double Measure(BenchPair pair, int roundTrips) => ProgramFloor.NsPerMessage(_bpf, _program, pair, roundTrips);

    /// <summary>From now on, every TCP connection established in <paramref name="cgroupPath"/> to or from one of
    /// <paramref name="ports"/> (at most eight) enters the sockhash, both ends, through a sock_ops program linked there
    /// until <see cref="Dispose"/>.</summary>
    public void AttachToCgroup(string cgroupPath, IReadOnlyList<int> ports)
    {
        if (ports.Count is < 1 or > 8 || _sockOps is not null)
        {
            throw new ArgumentException("one to eight ports, once", nameof(ports));
        }

        _sockOps = _bpf.LoadProgram("accel_minimal_o", BpfProgramType.SockOps, BpfAttachType.CgroupSockOps, SockOpsInstructions(_map.Value, ports), "Dual MIT/GPL");
        int cg = _bpf.Kernel.Open(cgroupPath, FileConstants.OpenDirectory);
        if (cg < 0)
        {
            throw new IOException($"Cannot open the cgroup {cgroupPath}: errno {-cg}");
        }

        using var cgroup = new KernelFd(_bpf.Kernel, cg);
        int r = _bpf.TryCreateLink(_sockOps, cgroup.Value, BpfAttachType.CgroupSockOps, out _link);
        if (r < 0)
        {
            throw new BpfException("BPF_LINK_CREATE (minimal sock_ops program to the cgroup)", -r);
        }
    }

    /// <summary>Waits until <paramref name="s"/>, a connected client socket, and its peer are both in the sockhash,
    /// so that no byte is sent before the redirect has somewhere to go (a miss drops the message); remembers it for
    /// <see cref="EnsureClientsRedirected"/>.</summary>
    public async Task WaitForBothEndsAsync(Socket s, CancellationToken cancellationToken)
    {
        lock (_clients)
        {
            _clients.Add(s);
        }

        uint own = Key(s);
        uint peer = (own << 16) | (own >> 16);
        byte[] value = new byte[sizeof(ulong)];
        for (int i = 0; ; i++)
        {
            if (_bpf.TryLookup(_map, BitConverter.GetBytes(own), value) >= 0 && _bpf.TryLookup(_map, BitConverter.GetBytes(peer), value) >= 0)
            {
                return;
            }

            if (i == 5000)
            {
                throw new TimeoutException($"a connection of the minimal redirect ({s.LocalEndPoint} to {s.RemoteEndPoint}) did not enter its sockhash");
            }

            await Task.Delay(1, cancellationToken);
        }
    }

    /// <summary>The sk_msg program's run time and runs so far (counted while the kernel's statistics are on).</summary>
    public (ulong RunTimeNs, ulong RunCount) ProgramStatistics() => _bpf.ProgramRunStatistics(_program);

    public void Dispose()
    {
        _link?.Dispose();
        _sockOps?.Dispose();
        _program.Dispose();
        _map.Dispose();
    }

    // struct tcp_info (uapi/linux/tcp.h): __u64 tcpi_bytes_acked at offset 120, tcpi_bytes_received at 128.
    private static long TcpBytesReceived(Socket s) => TcpInfoField(s, 128);

    private static long TcpBytesAcked(Socket s) => TcpInfoField(s, 120);

    private static long TcpInfoField(Socket s, int offset)
    {
        Span<byte> info = stackalloc byte[232];
        int n = s.GetRawSocketOption((int)SocketOptionLevel.Tcp, 11 /* TCP_INFO */, info);
        if (n < offset + 8)
        {
            throw new InvalidOperationException($"TCP_INFO returned {n} bytes, too few for the field at {offset}");
        }

        return BinaryPrimitives.ReadInt64LittleEndian(info[offset..]);
    }

    private static uint Key(Socket s)
        => (uint)((IPEndPoint)s.LocalEndPoint!).Port << 16 | (uint)((IPEndPoint)s.RemoteEndPoint!).Port;

    /// <summary>The sk_msg program: bpf_msg_redirect_hash(msg, map, &amp;key, BPF_F_INGRESS) with key = the peer's,
    /// (remote port &lt;&lt; 16) | local port, then bpf_msg_apply_bytes(msg, <paramref name="windowBytes"/>) unless that is
    /// 0; returns the redirect's verdict. The remote port is in network order in the field's upper half, as the
    /// library's sock_ops program reads it.</summary>
    private static byte[] Instructions(int mapFd, int windowBytes)
    {
        byte[] redirect =
        [
            0x61, 0x12, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 = *(u32 *)(r1 + 60)     sk_msg_md.remote_port
            0xdc, 0x02, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, // r2 = be32 r2               the port, host order
            0x67, 0x02, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, // r2 <<= 16
            0x61, 0x13, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, // r3 = *(u32 *)(r1 + 64)     sk_msg_md.local_port
            0x4f, 0x32, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 |= r3
            0x63, 0x2a, 0xfc, 0xff, 0x00, 0x00, 0x00, 0x00, // *(u32 *)(r10 - 4) = r2
            0xbf, 0xa3, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r3 = r10
            0x07, 0x03, 0x00, 0x00, 0xfc, 0xff, 0xff, 0xff, // r3 += -4
            0x18, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0xb7, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // r4 = BPF_F_INGRESS
            0x85, 0x00, 0x00, 0x00, 0x47, 0x00, 0x00, 0x00, // call bpf_msg_redirect_hash (71)
        ];
        BinaryPrimitives.WriteInt32LittleEndian(redirect.AsSpan(8 * 8 + 4), mapFd);
        byte[] exit = [0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]; // exit
        if (windowBytes == 0)
        {
            return [.. redirect, .. exit];
        }

        byte[] keepContext = [0xbf, 0x16, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]; // r6 = r1      the context, for the second call
        byte[] window =
        [
            0xbf, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r7 = r0                    the redirect's verdict
            0xbf, 0x61, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r1 = r6
            0xb7, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 = windowBytes
            0x85, 0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x00, // call bpf_msg_apply_bytes (61)
            0xbf, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r0 = r7
        ];
        BinaryPrimitives.WriteInt32LittleEndian(window.AsSpan(2 * 8 + 4), windowBytes);
        return [.. keepContext, .. redirect, .. window, .. exit];
    }

    /// <summary>The sock_ops program: at ACTIVE_ESTABLISHED (4) and PASSIVE_ESTABLISHED (5), when the local or the
    /// remote port is one of <paramref name="ports"/>, bpf_sock_hash_update(ops, map, &amp;key, BPF_NOEXIST) with
    /// key = (local port &lt;&lt; 16) | remote port; returns 1 (19 + 2n instructions for n ports).</summary>
    private static byte[] SockOpsInstructions(int mapFd, IReadOnlyList<int> ports)
    {
        // Jumps are relative to the next instruction; "add" is the first instruction of the update, "end" the return.
        int n = ports.Count, add = 8 + 2 * n, end = add + 9;
        var p = new List<byte>();
        void Insn(byte code, byte regs, short offset, int imm)
        {
            p.Add(code);
            p.Add(regs);
            p.AddRange(BitConverter.GetBytes(offset));
            p.AddRange(BitConverter.GetBytes(imm));
        }

        short To(int target) => (short)(target - (p.Count / 8 + 1));

        Insn(0x61, 0x12, 0, 0);           // r2 = *(u32 *)(r1 + 0)     bpf_sock_ops.op
        Insn(0x15, 0x02, To(4), 4);       // if r2 == 4 goto 4
        Insn(0x15, 0x02, To(4), 5);       // if r2 == 5 goto 4
        Insn(0x05, 0x00, To(end), 0);     // goto end
        Insn(0x61, 0x13, 68, 0);          // r3 = *(u32 *)(r1 + 68)    bpf_sock_ops.local_port
        Insn(0x61, 0x12, 64, 0);          // r2 = *(u32 *)(r1 + 64)    bpf_sock_ops.remote_port
        Insn(0xdc, 0x02, 0, 32);          // r2 = be32 r2
        foreach (int port in ports)
        {
            Insn(0x15, 0x03, To(add), port); // if r3 == port goto add
            Insn(0x15, 0x02, To(add), port); // if r2 == port goto add
        }

        Insn(0x05, 0x00, To(end), 0);     // goto end
        Insn(0x67, 0x03, 0, 16);          // add: r3 <<= 16
        Insn(0x4f, 0x23, 0, 0);           // r3 |= r2
        Insn(0x63, 0x3a, -4, 0);          // *(u32 *)(r10 - 4) = r3
        Insn(0xbf, 0xa3, 0, 0);           // r3 = r10
        Insn(0x07, 0x03, 0, -4);          // r3 += -4
        Insn(0x18, 0x12, 0, mapFd);       // r2 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
        Insn(0x00, 0x00, 0, 0);
        Insn(0xb7, 0x04, 0, 1);           // r4 = BPF_NOEXIST
        Insn(0x85, 0x00, 0, 70);          // call bpf_sock_hash_update
        Insn(0xb7, 0x00, 0, 1);           // end: r0 = 1
        Insn(0x95, 0x00, 0, 0);           // exit
        return [.. p];
    }
}
