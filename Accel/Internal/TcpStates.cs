using System.Net.Sockets;

namespace Accel.Internal;

/// <summary>A TCP socket's state as the kernel keeps it (<c>tcpi_state</c> of <c>TCP_INFO</c>).</summary>
internal static class TcpStates
{
    public const int Established = 1;

    /// <summary>The connection is over for this end: here, while it is still sending, because the peer answered with a
    /// reset.</summary>
    public const int Close = 7;

    /// <summary>The peer sent its FIN and this end has not closed: a send still goes out on TCP.</summary>
    public const int CloseWait = 8;

    private const int TcpInfo = 11;

    /// <summary>The socket's state (one syscall), or -1 when it cannot be read (the socket is closed).</summary>
    public static int Read(Socket socket)
    {
        Span<byte> info = stackalloc byte[8];
        try
        {
            return socket.GetRawSocketOption((int)SocketOptionLevel.Tcp, TcpInfo, info) > 0 ? info[0] : -1;
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
            return -1;
        }
    }
}
