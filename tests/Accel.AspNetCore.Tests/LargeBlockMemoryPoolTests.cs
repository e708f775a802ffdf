using System.Buffers;
using System.Runtime.InteropServices;
using Accel.AspNetCore.Internal;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// The memory pool Kestrel gets while acceleration is on: every block has the configured size, is array-backed (Kestrel's
/// socket sender asks for the array) and pinned, comes back for reuse once, and the pool keeps no more free blocks than
/// its bound. (Kestrel reading and writing through it over the fast path is in <see cref="KestrelMemoryPoolTests"/>.)
/// </summary>
public sealed class LargeBlockMemoryPoolTests
{
    private const int Block = 16 << 10;

    [Fact]
    public void A_block_has_the_configured_size_whatever_was_asked_and_is_a_pinned_array()
    {
        using var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 4);
        Assert.Equal(Block, pool.MaxBufferSize);
        foreach (int asked in new[] { -1, 0, 1, 2048, Block })
        {
            using IMemoryOwner<byte> owner = pool.Rent(asked);
            Assert.Equal(Block, owner.Memory.Length);
            Assert.True(MemoryMarshal.TryGetArray<byte>(owner.Memory, out ArraySegment<byte> array), "not array-backed");
            Assert.Equal(Block, array.Count);
            // A fresh 16 KiB array is in generation 0 unless it was allocated on the pinned object heap, which counts as old.
            Assert.True(GC.GetGeneration(array.Array!) >= GC.MaxGeneration, "not on the pinned object heap");
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(Block + 1));
    }

    [Fact]
    public void A_returned_block_is_reused_and_a_second_dispose_does_not_hand_it_out_twice()
    {
        using var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 4);
        IMemoryOwner<byte> first = pool.Rent();
        byte[] array = ArrayOf(first);
        first.Dispose();
        first.Dispose();
        Assert.Equal(1, pool.FreeBlocks);

        using IMemoryOwner<byte> again = pool.Rent();
        using IMemoryOwner<byte> other = pool.Rent();
        Assert.Same(array, ArrayOf(again));
        Assert.NotSame(array, ArrayOf(other));
        Assert.Equal(0, pool.FreeBlocks);
    }

    [Fact]
    public void The_pool_keeps_at_most_its_bound_of_free_blocks()
    {
        using var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 3);
        IMemoryOwner<byte>[] rented = Enumerable.Range(0, 10).Select(_ => pool.Rent()).ToArray();
        foreach (IMemoryOwner<byte> owner in rented)
        {
            owner.Dispose();
        }

        Assert.Equal(3, pool.FreeBlocks);
    }

    [Fact]
    public void After_the_pool_is_disposed_it_rents_nothing_and_keeps_nothing()
    {
        var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 3);
        IMemoryOwner<byte> owner = pool.Rent();
        pool.Rent().Dispose();
        Assert.Equal(1, pool.FreeBlocks);
        pool.Dispose();
        Assert.Equal(0, pool.FreeBlocks);
        owner.Dispose();
        Assert.Equal(0, pool.FreeBlocks);
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
    }

    [Fact]
    public async Task Blocks_rented_and_returned_from_many_threads_are_never_held_by_two_renters()
    {
        using var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 8);
        var held = new System.Collections.Concurrent.ConcurrentDictionary<byte[], int>(ReferenceEqualityComparer.Instance);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                IMemoryOwner<byte> owner = pool.Rent();
                byte[] array = ArrayOf(owner);
                Assert.True(held.TryAdd(array, 0), "a block was handed to two renters");
                Assert.True(held.TryRemove(array, out _));
                owner.Dispose();
            }
        })));
        Assert.InRange(pool.FreeBlocks, 1, 8);
    }

    private static byte[] ArrayOf(IMemoryOwner<byte> owner)
        => MemoryMarshal.TryGetArray<byte>(owner.Memory, out ArraySegment<byte> segment) ? segment.Array! : throw new InvalidOperationException("not array-backed");
}
