using Microsoft.Extensions.Logging;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Trims every live <see cref="LargeBlockMemoryPool"/> of one factory once a period (<see cref="LargeBlockMemoryPool.Trim"/>),
/// so that the free blocks a burst left behind go back to the GC once traffic no longer needs them: Kestrel creates a
/// pool per I/O queue of each listener, each may keep up to 16 MiB free, and Kestrel's heartbeat only trims its own
/// pools. One timer for all of them, started with the first pool; a disposed pool is let go at the next tick.
/// </summary>
internal sealed class IdleBlockTrimmer : IDisposable
{
    /// <summary>Kestrel's own pool looks at its idle blocks every 10 s too.</summary>
    internal static readonly TimeSpan DefaultPeriod = TimeSpan.FromSeconds(10);

    private readonly TimeSpan _period;
    private readonly ILogger _logger;
    private readonly List<LargeBlockMemoryPool> _pools = [];
    private readonly Lock _gate = new();
    private ITimer? _timer;
    private bool _disposed;

    public IdleBlockTrimmer(TimeSpan period, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        _period = period;
        _logger = logger;
    }

    /// <summary>Pools still trimmed (for tests).</summary>
    internal int Pools
    {
        get
        {
            lock (_gate)
            {
                return _pools.Count;
            }
        }
    }

    public void Add(LargeBlockMemoryPool pool)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _pools.Add(pool);
            // The running timer keeps this trimmer, and so the pools, alive until the factory that owns it is disposed:
            // a singleton of the host's container, which disposes it.
            _timer ??= TimeProvider.System.CreateTimer(static state => ((IdleBlockTrimmer)state!).TrimAll(), this, _period, _period);
        }
    }

    internal void TrimAll()
    {
        lock (_gate)
        {
            _pools.RemoveAll(static pool => pool.IsDisposed);
            try
            {
                foreach (LargeBlockMemoryPool pool in _pools)
                {
                    pool.Trim();
                }
            }
            catch (Exception e)
            {
                // On a timer thread an exception would end the process (a metrics listener that throws, say).
                Log.PoolTrimFailed(_logger, e);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _timer?.Dispose();
            _pools.Clear();
        }
    }
}
