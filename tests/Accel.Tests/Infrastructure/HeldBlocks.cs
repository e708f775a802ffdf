using Accel.Native.Abi;
using Accel.Native.Interop;
using Accel.Native.Pinning;

namespace Accel.Tests.Infrastructure;

/// <summary>Leases of blocks of the shared accel_track array held by the test, as by as many other engines on the host;
/// released on disposal.</summary>
internal sealed class HeldBlocks : IDisposable
{
    private readonly List<KernelFd> _leases = new();

    /// <summary>How many blocks are held.</summary>
    public int Count => _leases.Count;

    /// <summary>Every block that no one holds yet, from the pins of <paramref name="engine"/>.</summary>
    public static HeldBlocks Every(AccelerationEngine engine)
    {
        var held = new HeldBlocks();
        held.TakeEvery(engine);
        return held;
    }

    public void TakeEvery(AccelerationEngine engine)
    {
        while (TrackerBlocks.TryTake(LinuxKernel.Instance, engine.Kernel!.Store.Directory, AccelTrack.Blocks) is var (lease, _))
        {
            _leases.Add(lease);
        }
    }

    public void Dispose()
    {
        foreach (KernelFd lease in _leases)
        {
            lease.Dispose();
        }

        _leases.Clear();
    }
}
