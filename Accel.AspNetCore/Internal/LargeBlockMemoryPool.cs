using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's memory pool while acceleration is on: pinned blocks of one size larger than Kestrel's 4 KiB. Kestrel's
/// socket transport reads a connection into one block at a time and gathers its writes from them, so the block size
/// is the most a read can take: with 4 KiB, a 64 KiB redirected message takes sixteen reads, each taking the reader
/// socket's lock that the sender's redirect needs too. Blocks live on the pinned object heap, so a socket operation
/// pins nothing; at most <c>maxFreeBlocks</c> free blocks are kept, and the rest are left to the GC. Free blocks that
/// go unused for five minutes are given back over time (<see cref="Trim"/>, driven by <see cref="IdleBlockTrimmer"/>),
/// as Kestrel's own pool gives back its idle blocks, and the pool reports Kestrel's pool instruments
/// (<see cref="KestrelPoolMetrics"/>).
/// </summary>
internal sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    private readonly int _blockBytes;
    private readonly int _maxFreeBlocks;
    private readonly KestrelPoolMetrics? _metrics;
    private readonly string? _owner;
    private readonly ConcurrentQueue<Block> _free = new();
    private readonly int[] _fewestFreeOfRecentTrims;
    private int _freeCount;
    private int _fewestFreeSinceTrim;
    private int _trims;
    private volatile bool _disposed;

    /// <summary>How many periods between trims a free block must go unused before it is given back: with
    /// <see cref="IdleBlockTrimmer.DefaultPeriod"/>, five minutes. A load whose peaks come less than that apart keeps
    /// the blocks its peaks use. The benchmark's apps are each busy in short slices, one case after another: with a
    /// window of one period they gave back between slices what their next slice allocated again (1 to 5% more bytes
    /// allocated per request), and with a minute still 2% in h2c's 64 streams, whose slices came about a minute
    /// apart.</summary>
    internal const int DefaultTrimWindow = 30;

    public LargeBlockMemoryPool(int blockBytes, int maxFreeBlocks, KestrelPoolMetrics? metrics = null, string? owner = null, int trimWindow = DefaultTrimWindow)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockBytes, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxFreeBlocks);
        ArgumentOutOfRangeException.ThrowIfLessThan(trimWindow, 1);
        _blockBytes = blockBytes;
        _maxFreeBlocks = maxFreeBlocks;
        _metrics = metrics;
        _owner = owner;
        _fewestFreeOfRecentTrims = new int[trimWindow]; // zeros: a new pool gives nothing back for a whole window
    }

    public override int MaxBufferSize => _blockBytes;

    /// <summary>Free blocks kept for reuse (for tests).</summary>
    internal int FreeBlocks => Volatile.Read(ref _freeCount);

    /// <summary>Whether the pool was disposed: its trimmer lets go of it then.</summary>
    internal bool IsDisposed => _disposed;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, _blockBytes);
        ObjectDisposedException.ThrowIf(_disposed, this);
        _metrics?.Rented(_blockBytes, _owner);
        if (_free.TryDequeue(out Block? block))
        {
            int left = Interlocked.Decrement(ref _freeCount);
            // A low-water mark, racy on purpose: a lost update only changes how much the next trim gives back.
            if (left < Volatile.Read(ref _fewestFreeSinceTrim))
            {
                Volatile.Write(ref _fewestFreeSinceTrim, left);
            }

            _metrics?.Pooled(-_blockBytes, _owner);
            block.Lease();
            return block;
        }

        _metrics?.Allocated(_blockBytes, _owner);
        return new Block(this, _blockBytes);
    }

    /// <summary>
    /// Gives back to the GC half (rounded up) of the free blocks that stayed free through the last
    /// <c>trimWindow</c> periods between trims: a block no renter needed for that long is spare, and halving lets an
    /// idle pool empty within a few more periods while a busy one keeps what its peaks use. Called by one thread at a
    /// time (<see cref="IdleBlockTrimmer"/>); returns the number of blocks given back.
    /// </summary>
    internal int Trim()
    {
        _fewestFreeOfRecentTrims[_trims++ % _fewestFreeOfRecentTrims.Length] = Math.Min(Volatile.Read(ref _fewestFreeSinceTrim), FreeBlocks);
        // The fewest free in any of the periods is what was free throughout all of them: a period's low already counts
        // what earlier trims gave back.
        int spare = _fewestFreeOfRecentTrims.Min();
        int evicted = 0;
        for (int target = (spare + 1) / 2; evicted < target && _free.TryDequeue(out _); evicted++)
        {
            Interlocked.Decrement(ref _freeCount);
        }

        Volatile.Write(ref _fewestFreeSinceTrim, FreeBlocks);
        if (evicted > 0)
        {
            _metrics?.Pooled(-(long)evicted * _blockBytes, _owner);
            _metrics?.Evicted((long)evicted * _blockBytes, _owner);
        }

        return evicted;
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        DropFreeBlocks();
    }

    /// <summary>Leaves every free block to the GC, and the pooled bytes reported drop by as much.</summary>
    private void DropFreeBlocks()
    {
        int dropped = 0;
        while (_free.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _freeCount);
            dropped++;
        }

        if (dropped > 0)
        {
            _metrics?.Pooled(-(long)dropped * _blockBytes, _owner);
        }
    }

    private void Return(Block block)
    {
        // A block returned after the pool is gone, or beyond the free list's bound, is left to the GC.
        if (_disposed)
        {
            return;
        }

        if (Interlocked.Increment(ref _freeCount) > _maxFreeBlocks)
        {
            Interlocked.Decrement(ref _freeCount);
            return;
        }

        _free.Enqueue(block);
        _metrics?.Pooled(_blockBytes, _owner);
        if (_disposed)
        {
            // Disposed since the check above, and its drain may have run before this block was queued: drop it here, so
            // that a disposed pool keeps nothing and reports nothing pooled.
            DropFreeBlocks();
        }
    }

    private sealed class Block : IMemoryOwner<byte>
    {
        private readonly LargeBlockMemoryPool _pool;
        private int _leased = 1;

        public Block(LargeBlockMemoryPool pool, int bytes)
        {
            _pool = pool;
            byte[] array = GC.AllocateUninitializedArray<byte>(bytes, pinned: true);
            Memory = MemoryMarshal.CreateFromPinnedArray(array, 0, bytes);
        }

        public Memory<byte> Memory { get; }

        public void Lease() => Volatile.Write(ref _leased, 1);

        public void Dispose()
        {
            // A second Dispose of the same lease must not put the block on the free list twice (two renters).
            if (Interlocked.Exchange(ref _leased, 0) == 1)
            {
                _pool.Return(this);
            }
        }
    }
}
