using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's <see cref="IMemoryPoolFactory{T}"/>, decorated: while acceleration is on, the pools Kestrel creates (one per
/// I/O queue of each listener, when it binds) hand out blocks of
/// <see cref="SidecarlessAccelerationOptions.KestrelBlockBytes"/> (<see cref="LargeBlockMemoryPool"/>), so that Kestrel
/// reads and writes a connection in larger pieces. With acceleration off, or the option at 0, Kestrel's own pool.
/// Kestrel binds after the host's starting phase, where <see cref="AccelerationStartup"/> has started the engine. Like
/// Kestrel's own pools, these report <c>aspnetcore.memory_pool.*</c> (when the host has metrics) and give back their
/// idle blocks over time (<see cref="IdleBlockTrimmer"/>).
/// </summary>
internal sealed class AcceleratedMemoryPoolFactory(
    IMemoryPoolFactory<byte> kestrels,
    AccelerationEngineProvider engine,
    IOptions<SidecarlessAccelerationOptions> options,
    KestrelPoolMetrics? metrics,
    ILoggerFactory loggers) : IMemoryPoolFactory<byte>, IDisposable
{
    /// <summary>Free memory each pool keeps for reuse (256 blocks of 64 KiB); more goes back to the GC. Under 64 HTTP/2
    /// streams at once, a bound of 64 blocks had Kestrel's blocks come and go: 11% more bytes allocated per request.</summary>
    internal const int FreeBytesKept = 16 << 20;

    /// <summary>The free blocks of <paramref name="blockBytes"/> a pool keeps: <see cref="FreeBytesKept"/> worth, and at
    /// least 16.</summary>
    internal static int FreeBlocksKept(int blockBytes) => Math.Max(16, FreeBytesKept / blockBytes);

    private readonly IdleBlockTrimmer _trimmer = new(IdleBlockTrimmer.DefaultPeriod, loggers.CreateLogger("Accel"));

    /// <summary>Whether Kestrel's pools should be this factory's: acceleration on and the option not 0.</summary>
    internal static bool WantsLargeBlocks(SidecarlessAccelerationOptions options, AccelerationEngine engine)
        => options.KestrelBlockBytes > 0 && engine.IsEnabled;

    public MemoryPool<byte> Create(MemoryPoolOptions? poolOptions = null)
    {
        int blockBytes = options.Value.KestrelBlockBytes;
        if (!WantsLargeBlocks(options.Value, engine.Engine))
        {
            return kestrels.Create(poolOptions);
        }

        var pool = new LargeBlockMemoryPool(blockBytes, FreeBlocksKept(blockBytes), metrics, poolOptions?.Owner);
        _trimmer.Add(pool);
        return pool;
    }

    public void Dispose() => _trimmer.Dispose();
}
