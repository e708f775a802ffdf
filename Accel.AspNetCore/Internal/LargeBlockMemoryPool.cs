using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's memory pool while acceleration is on: pinned blocks of one size larger than Kestrel's 4 KiB. Kestrel's
/// socket transport reads a connection into one block at a time and gathers its writes from them, so the block size
/// is the most a read can take: with 4 KiB, a 64 KiB redirected message takes sixteen reads, each taking the reader
/// socket's lock that the sender's redirect needs too. Blocks live on the pinned object heap, so a socket operation
/// pins nothing; at most <c>maxFreeBlocks</c> free blocks are kept, and the rest are left to the GC.
/// </summary>
internal sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    private readonly int _blockBytes;
    private readonly int _maxFreeBlocks;
    private readonly ConcurrentQueue<Block> _free = new();
    private int _freeCount;
    private volatile bool _disposed;

    public LargeBlockMemoryPool(int blockBytes, int maxFreeBlocks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockBytes, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxFreeBlocks);
        _blockBytes = blockBytes;
        _maxFreeBlocks = maxFreeBlocks;
    }

    public override int MaxBufferSize => _blockBytes;

    /// <summary>Free blocks kept for reuse (for tests).</summary>
    internal int FreeBlocks => Volatile.Read(ref _freeCount);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, _blockBytes);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_free.TryDequeue(out Block? block))
        {
            Interlocked.Decrement(ref _freeCount);
            block.Lease();
            return block;
        }

        return new Block(this, _blockBytes);
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        while (_free.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _freeCount);
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
