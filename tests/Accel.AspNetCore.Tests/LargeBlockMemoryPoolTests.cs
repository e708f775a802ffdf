using System.Buffers;
using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;
using Accel.AspNetCore.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// The memory pool Kestrel gets while acceleration is on: every block has the configured size, is array-backed (Kestrel's
/// socket sender asks for the array) and pinned, comes back for reuse once, and the pool keeps no more free blocks than
/// its bound; free blocks that stay unused are given back over time, and the pool reports Kestrel's pool instruments.
/// (Kestrel reading and writing through it over the fast path is in <see cref="KestrelMemoryPoolTests"/>.)
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

    [Fact]
    public void A_trim_gives_back_half_of_the_blocks_that_stayed_free_so_an_idle_pool_empties()
    {
        using var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 16, trimWindow: 1);
        Release(RentMany(pool, 8));
        Assert.Equal(8, pool.FreeBlocks);

        // The blocks came back during this period: they were all in use in it, so none is spare yet.
        Assert.Equal(0, pool.Trim());
        var left = new List<int>();
        while (pool.FreeBlocks > 0)
        {
            pool.Trim();
            left.Add(pool.FreeBlocks);
        }

        Assert.Equal(new[] { 4, 2, 1, 0 }, left);
    }

    [Fact]
    public void A_trim_keeps_the_blocks_the_last_period_used()
    {
        using var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 16, trimWindow: 1);
        Release(RentMany(pool, 10));
        pool.Trim();

        // A peak of 7 blocks in use leaves 3 that were free throughout: 2 of them go (half, rounded up).
        Release(RentMany(pool, 7));
        Assert.Equal(2, pool.Trim());
        Assert.Equal(8, pool.FreeBlocks);

        // The same peak again: 1 block was spare in that period.
        Release(RentMany(pool, 7));
        Assert.Equal(1, pool.Trim());
        Assert.Equal(7, pool.FreeBlocks);

        // A period at that peak has nothing spare.
        Release(RentMany(pool, 7));
        Assert.Equal(0, pool.Trim());
        Assert.Equal(7, pool.FreeBlocks);
    }

    [Fact]
    public void A_block_is_given_back_only_once_it_went_unused_for_the_whole_window()
    {
        using var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 32, trimWindow: 3);
        Release(RentMany(pool, 20));

        // A new pool keeps its blocks for a whole window, idle or not.
        Assert.Equal(0, pool.Trim());
        Assert.Equal(0, pool.Trim());
        Assert.Equal(0, pool.Trim());

        // A peak of 20 blocks every third period: each window holds one, so nothing is ever spare.
        for (int period = 0; period < 9; period++)
        {
            if (period % 3 == 0)
            {
                Release(RentMany(pool, 20));
            }
            else
            {
                Release(RentMany(pool, 2));
            }

            Assert.Equal(0, pool.Trim());
        }

        Assert.Equal(20, pool.FreeBlocks);

        // Only two blocks a period: once a whole window has passed without the peak, half of the 18 spare blocks go,
        // then half of what is spare of the rest, period by period, down to the two every period uses.
        var left = new List<int>();
        for (int period = 0; period < 8; period++)
        {
            Release(RentMany(pool, 2));
            pool.Trim();
            left.Add(pool.FreeBlocks);
        }

        Assert.Equal(new[] { 11, 6, 4, 3, 2, 2, 2, 2 }, left);
    }

    [Fact]
    public async Task Blocks_returned_while_the_pool_is_disposed_are_not_kept_nor_reported_as_pooled()
    {
        using ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        long pooled = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Name == "aspnetcore.memory_pool.pooled")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref pooled, value));
        listener.Start();

        // Kestrel disposes its pools when a listener stops, while connections may still return blocks: each round
        // returns blocks from four threads as the pool is disposed, which interleaves a return with the dispose's drain.
        for (int round = 0; round < 200; round++)
        {
            var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 64, new KestrelPoolMetrics(meters), "kestrel");
            IMemoryOwner<byte>[] rented = RentMany(pool, 64);
            using var start = new Barrier(5);
            Task[] returns = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
            {
                start.SignalAndWait();
                for (int i = t; i < rented.Length; i += 4)
                {
                    rented[i].Dispose();
                }
            })).ToArray();
            start.SignalAndWait();
            pool.Dispose();
            await Task.WhenAll(returns);

            Assert.Equal(0, pool.FreeBlocks);
            Assert.Equal(0, Interlocked.Read(ref pooled));
        }
    }

    [Fact]
    public void The_pool_reports_Kestrels_pool_instruments_with_the_owner()
    {
        using ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        var totals = new Dictionary<string, long>();
        var owners = new HashSet<string?>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Microsoft.AspNetCore.MemoryPool" && instrument.Meter.Scope == meters)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            totals[instrument.Name] = totals.GetValueOrDefault(instrument.Name) + value;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                owners.Add($"{tag.Key}={tag.Value}");
            }
        });
        listener.Start();

        var pool = new LargeBlockMemoryPool(Block, maxFreeBlocks: 16, new KestrelPoolMetrics(meters), "kestrel", trimWindow: 1);
        Release(RentMany(pool, 6));
        Release(RentMany(pool, 2));
        pool.Trim();
        pool.Trim();

        Assert.Equal(6L * Block, totals["aspnetcore.memory_pool.allocated"]);
        Assert.Equal(8L * Block, totals["aspnetcore.memory_pool.rented"]);
        Assert.Equal(3L * Block, totals["aspnetcore.memory_pool.evicted"]); // the second trim: half of 6
        Assert.Equal((long)pool.FreeBlocks * Block, totals["aspnetcore.memory_pool.pooled"]);
        Assert.Equal(new HashSet<string?> { "aspnetcore.memory_pool.owner=kestrel" }, owners);

        pool.Dispose();
        Assert.Equal(0, totals["aspnetcore.memory_pool.pooled"]);
    }

    [Fact]
    public async Task The_trimmer_empties_idle_pools_on_its_timer_and_lets_go_of_disposed_ones()
    {
        using var trimmer = new IdleBlockTrimmer(TimeSpan.FromMilliseconds(20), NullLogger.Instance);
        using var idle = new LargeBlockMemoryPool(Block, maxFreeBlocks: 64);
        var gone = new LargeBlockMemoryPool(Block, maxFreeBlocks: 64);
        trimmer.Add(idle);
        trimmer.Add(gone);
        Release(RentMany(idle, 40));
        gone.Dispose();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((idle.FreeBlocks > 0 || trimmer.Pools > 1) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(0, idle.FreeBlocks);
        Assert.Equal(1, trimmer.Pools);
    }

    private static IMemoryOwner<byte>[] RentMany(LargeBlockMemoryPool pool, int count)
        => Enumerable.Range(0, count).Select(_ => pool.Rent()).ToArray();

    private static void Release(IEnumerable<IMemoryOwner<byte>> owners)
    {
        foreach (IMemoryOwner<byte> owner in owners)
        {
            owner.Dispose();
        }
    }

    private static byte[] ArrayOf(IMemoryOwner<byte> owner)
        => MemoryMarshal.TryGetArray<byte>(owner.Memory, out ArraySegment<byte> segment) ? segment.Array! : throw new InvalidOperationException("not array-backed");
}
