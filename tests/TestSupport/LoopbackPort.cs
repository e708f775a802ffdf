using System.Net;
using System.Net.Sockets;

namespace Accel.Testing;

/// <summary>A loopback port that was free a moment ago, for a server started in another process.</summary>
internal static class LoopbackPort
{
    public static int Free()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
