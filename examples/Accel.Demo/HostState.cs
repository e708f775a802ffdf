namespace Accel.Demo;

/// <summary>Prints which services share the fast path on this host, with their sockets and bytes.</summary>
internal static class HostState
{
    public static int Print(string pinRoot)
    {
        IReadOnlyList<SharedFastPath> paths = AccelerationHostState.Read(pinRoot);
        if (paths.Count == 0)
        {
            Console.WriteLine($"No fast path is pinned under {pinRoot}/accel: no service with acceleration has started on this host (or another pin root is used).");
            return 0;
        }

        foreach (SharedFastPath path in paths)
        {
            if (!path.IsThisVersion)
            {
                Console.WriteLine($"{path.Directory}: made by another version of the library (not read).");
                continue;
            }

            Console.WriteLine($"{path.Directory}: {path.Sockets} sockets in the map, {path.Services.Count} services, "
                + $"{path.PeerAddresses} of {path.PeerAddressCapacity} same-host peer addresses");
            Console.WriteLine($"  {"service",-24} {"host",-16} {"pid",8} {"sockets",8} {"redirected",14} {"via TCP",14} {"degraded",8}");
            foreach (SharedService s in path.Services)
            {
                var st = s.Statistics;
                Console.WriteLine($"  {s.Name,-24} {s.Host,-16} {s.Pid,8} {st.RegisteredSockets,8} {st.RedirectedBytes,12} B {st.TcpBytes,12} B {st.DegradedDirections,8}");
            }
        }

        return 0;
    }
}
