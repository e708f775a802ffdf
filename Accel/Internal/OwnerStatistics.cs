using System.Runtime.InteropServices;
using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Interop;

namespace Accel.Internal;

/// <summary>Reads one engine instance's per-CPU counters from accel_owners and turns them into the public figures.</summary>
internal static class OwnerStatistics
{
    public static AccelOwnerStats Read(BpfSyscalls bpf, KernelFd owners, ReadOnlySpan<byte> owner)
    {
        int stride = Marshal.SizeOf<AccelOwnerStats>();
        byte[] values = new byte[stride * PossibleCpus.Count];
        var total = default(AccelOwnerStats);
        if (bpf.TryLookup(owners, owner, values) == 0)
        {
            for (int cpu = 0; cpu < PossibleCpus.Count; cpu++)
            {
                total.Add(MemoryMarshal.Read<AccelOwnerStats>(values.AsSpan(cpu * stride)));
            }
        }

        return total;
    }

    public static AccelerationStatistics ToStatistics(this AccelOwnerStats s, long optInFailures = 0) => new(
        RegisteredSockets: (long)s.Inserted,
        RefusedSockets: (long)s.InsertFailed + optInFailures,
        SkippedRemotePeers: (long)s.SkippedRemote,
        RedirectedMessages: (long)s.RedirectedMessages,
        RedirectedBytes: (long)s.RedirectedBytes,
        TcpMessages: (long)s.TcpMessages,
        TcpBytes: (long)s.TcpBytes,
        DegradedDirections: (long)s.Degraded)
    {
        SkippedPlainPeers = (long)s.SkippedPlainPeer,
    };
}
