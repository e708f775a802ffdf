using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Accel.Native.Abi;
using Accel.Native.Interop;

namespace Accel.Internal;

/// <summary>What the kernel knows about a connected TCP socket that registration needs.</summary>
internal static class SocketFacts
{
    private const int SolSocket = 1, SoNetnsCookie = 71;
    private const int IpProtoTcp = 6, TcpInfo = 11;
    private const byte TcpEstablished = 1;

    /// <summary>TCP_INFO: established, and whether any data byte has left through TCP (sent, queued or in flight).</summary>
    public static int ReadTcpInfo(IKernel kernel, int fd, out bool established, out bool hasSent)
    {
        Span<byte> info = stackalloc byte[232];
        info.Clear();
        int r = kernel.GetSockOpt(fd, IpProtoTcp, TcpInfo, info, out int len);
        established = false;
        hasSent = true;
        if (r < 0)
        {
            return r;
        }

        established = info[0] == TcpEstablished;
        uint notSent = len >= 148 ? MemoryMarshal.Read<uint>(info[144..]) : 0;
        uint dataSegsOut = len >= 160 ? MemoryMarshal.Read<uint>(info[156..]) : 0;
        ulong bytesSent = len >= 208 ? MemoryMarshal.Read<ulong>(info[200..]) : 0;
        // Without tcpi_bytes_sent (kernels before 4.19) nothing can be proven: count it as written.
        hasSent = len < 208 || bytesSent != 0 || dataSegsOut != 0 || notSent != 0;
        return 0;
    }

    public static int ReadNetnsCookie(IKernel kernel, int fd, out ulong cookie)
    {
        Span<byte> value = stackalloc byte[8];
        int r = kernel.GetSockOpt(fd, SolSocket, SoNetnsCookie, value, out _);
        cookie = r < 0 ? 0 : MemoryMarshal.Read<ulong>(value);
        return r;
    }

    /// <summary>The 16-byte IPv6 form of an address (IPv4 as ::ffff:a.b.c.d), as the BPF programs key it.</summary>
    public static byte[] V6Bytes(IPAddress address)
        => (address.AddressFamily == AddressFamily.InterNetwork ? address.MapToIPv6() : address).GetAddressBytes();

    /// <summary>127.0.0.0/8 (plain or IPv4-mapped) or ::1: the same test as the BPF programs' is_loopback.</summary>
    public static bool IsLoopback(ReadOnlySpan<byte> v6)
    {
        bool mapped = v6[..10].IndexOfAnyExcept((byte)0) < 0 && v6[10] == 0xff && v6[11] == 0xff;
        if (mapped)
        {
            return v6[12] == 127;
        }

        return v6[..15].IndexOfAnyExcept((byte)0) < 0 && v6[15] == 1;
    }

    /// <summary>The socket's own key, exactly as accel_sockops would build it.</summary>
    public static unsafe AccelKey Key(IPEndPoint local, IPEndPoint remote, ulong netnsCookie)
    {
        byte[] l = V6Bytes(local.Address);
        byte[] r = V6Bytes(remote.Address);
        var key = new AccelKey { LocalPort = (uint)local.Port, RemotePort = (uint)remote.Port };
        l.CopyTo(new Span<byte>(key.LocalIp, 16));
        r.CopyTo(new Span<byte>(key.RemoteIp, 16));
        key.NetnsCookie = IsLoopback(r) || l.AsSpan().SequenceEqual(r) ? netnsCookie : 0;
        return key;
    }
}
