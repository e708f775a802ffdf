using System.Diagnostics;
using Accel.Testing;
using Accel.Internal;
using Accel.Native.Abi;
using Accel.Native.Interop;
using Accel.Native.Pinning;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// A reader that reports its consumption (as the ASP.NET Core transport and handler do) gets a slot in shared memory
/// with its first report and writes every later one there, without a syscall: the writer's program and pacer read it
/// from there, and closing the connection marks the slot so that it can be given to another socket.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class ReportSlotTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelFact]
    public async Task Reports_after_the_first_are_memory_stores_that_the_writer_sees_and_closing_frees_the_slot()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        Assert.NotNull(engine.ReportSlots);
        long total = 4 * engine.ReportStep + 12345; // well past the first report, well below the bound
        AccelKey serverKey;
        AccelFlow flow;
        using (var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true))
        {
            serverKey = engine.ReadState(pair.Server)!.Value.Key;
            Task write = Task.Run(async () =>
            {
                byte[] chunk = new byte[64 * 1024];
                for (long sent = 0; sent < total;)
                {
                    sent += await pair.Client.SendAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, total - sent)));
                }
            });
            byte[] buffer = new byte[32 * 1024];
            for (long read = 0; read < total;)
            {
                int n = await pair.Server.ReceiveAsync(buffer);
                Assert.True(n > 0, "the connection ended early");
                read += n;
                pair.ServerRegistration.ReportConsumed(read);
            }

            await write;
            Assert.Equal(DirectionPath.Redirected, pair.ClientRegistration.GetStatistics().Path);
            Assert.True(engine.Kernel!.ReadFlow(serverKey, out flow) >= 0);
            output.WriteLine($"entry: consumed {flow.Consumed & AccelConsumed.Mask}, slot {flow.Slot}, tag {flow.Tag}");
            Assert.Equal(0u, flow.Tracker);
            Assert.NotEqual(0u, flow.Slot);
            // The entry kept the first report (the one syscall); the slot has what was read since, to within a store
            // step (a quarter of a report step).
            long first = (long)(flow.Consumed & AccelConsumed.Mask), seen = engine.ReadPeerConsumed(serverKey).Consumed;
            output.WriteLine($"the writer sees {seen} of {total}");
            Assert.True(first <= engine.ReportStep + 32 * 1024, $"first report {first}");
            Assert.InRange(seen, total - engine.ReportStep / 4, total);
        }

        // Closed: accel_sockops marks the slot with its tag (once the connection reaches TCP_CLOSE, just after).
        var clock = Stopwatch.StartNew();
        while ((engine.ReportSlots!.Peek(flow.Slot) & AccelTrack.Closed) == 0 && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(10);
        }

        ulong value = engine.ReportSlots.Peek(flow.Slot);
        Assert.NotEqual(0UL, value & AccelTrack.Closed);
        Assert.Equal(flow.Tag, (uint)(value >> 48));
        Assert.Null(engine.ReportSlots.Read(flow.Slot, flow.Tag));
    }

    /// <summary>Every block of the shared array is held, as by as many other engines on the host: a reader gets no slot
    /// and reports by syscall, as where the array cannot be mapped, and a writer that paces on those reports stays
    /// redirected for 16 times the bound. A reader that stopped reporting instead would leave the writer waiting, and
    /// one whose reports the writer could not see would move the direction to TCP after the first bound.</summary>
    [KernelFact]
    public async Task Without_a_free_slot_readers_report_by_syscall_and_the_writer_stays_redirected()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        Assert.NotNull(engine.ReportSlots);
        // Blocks are leased when the first reader asks for a slot: taken now, none is left for this engine.
        using (var held = HeldBlocks.Every(engine))
        {
            output.WriteLine($"held {held.Count} of {AccelTrack.Blocks} blocks");
            using var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            AccelKey serverKey = engine.ReadState(pair.Server)!.Value.Key;
            long total = 16 * engine.BacklogBytes;
            Task write = CounterStream.WriteAsync(pair.Client, total, 64 * 1024, cts.Token, pacer: pair.ClientRegistration);
            string? error = await CounterStream.VerifyAsync(pair.Server, total, pause: null, cts.Token, pair.ServerRegistration.ReportConsumed);
            await write;

            Assert.Null(error);
            ConnectionStatistics stats = pair.ClientRegistration.GetStatistics();
            output.WriteLine($"{stats}");
            Assert.Equal(DirectionPath.Redirected, stats.Path);
            Assert.Equal(total, stats.RedirectedBytes);
            Assert.True(engine.Kernel!.ReadFlow(serverKey, out AccelFlow flow) >= 0);
            Assert.Equal(0u, flow.Slot);
            // Every report went to the entry: it holds the last one, within a report step of the end.
            Assert.InRange((long)(flow.Consumed & AccelConsumed.Mask), total - engine.ReportStep, total);
        }
    }

    /// <summary>Where the shared array cannot be mapped, the engine says why in its log and its readers report by
    /// syscall: the writer that paces on those reports stays redirected past the bound.</summary>
    [KernelFact]
    public async Task Where_the_array_cannot_be_mapped_the_engine_says_why_and_readers_report_by_syscall()
    {
        var kernel = new UnmappableKernel(Errno.ENOMEM);
        var log = new RecordingLogger();
        using var engine = AccelerationEngine.Start(fixture.Environment.Options(), log, kernel);
        Assert.True(engine.IsEnabled, engine.Status.Message);
        Assert.True(kernel.MapCalls > 0, "the engine never tried to map the array");
        Assert.Null(engine.ReportSlots);
        var said = Assert.Single(log.Entries, e => e.Id.Id == 15);
        output.WriteLine(said.Message);
        Assert.Contains("ENOMEM", said.Message, StringComparison.Ordinal);
        Assert.Contains("by syscall", said.Message, StringComparison.Ordinal);

        using var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        AccelKey serverKey = engine.ReadState(pair.Server)!.Value.Key;
        long total = 3 * engine.BacklogBytes;
        Task write = CounterStream.WriteAsync(pair.Client, total, 64 * 1024, cts.Token, pacer: pair.ClientRegistration);
        Assert.Null(await CounterStream.VerifyAsync(pair.Server, total, pause: null, cts.Token, pair.ServerRegistration.ReportConsumed));
        await write;

        Assert.Equal(DirectionPath.Redirected, pair.ClientRegistration.GetStatistics().Path);
        Assert.True(engine.Kernel!.ReadFlow(serverKey, out AccelFlow flow) >= 0);
        Assert.Equal(0u, flow.Slot);
        Assert.InRange((long)(flow.Consumed & AccelConsumed.Mask), total - engine.ReportStep, total);
    }

    /// <summary>An engine that found every block held asks again after <see cref="ReportSlots.BlockRetryMs"/>, not
    /// before (each attempt costs a lock per block) and not never: blocks free up when other engines end.</summary>
    [KernelFact]
    public async Task An_engine_that_found_every_block_held_leases_one_again_once_the_retry_is_due()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        ReportSlots slots = engine.ReportSlots!;
        Stopwatch sinceRefused;
        using (HeldBlocks.Every(engine))
        {
            Assert.Null(slots.Take(0));
            sinceRefused = Stopwatch.StartNew();
        }

        Assert.Null(slots.Take(0)); // free blocks now, but the retry is not due
        await Task.Delay(TimeSpan.FromMilliseconds(ReportSlots.BlockRetryMs) - sinceRefused.Elapsed + TimeSpan.FromMilliseconds(200));
        Assert.NotNull(slots.Take(0));
    }

    /// <summary>With every slot of the engine's block taken and no other block to lease, the slot of a connection that
    /// closes is the next reader's: the kernel's close mark counts in the block, which is what makes the engine look
    /// at its slots again.</summary>
    [KernelFact]
    public async Task A_closed_connections_slot_goes_to_the_next_reader_when_every_other_slot_is_taken()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        ReportSlots slots = engine.ReportSlots!;
        using var held = new HeldBlocks();
        uint closing;
        using (var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true))
        {
            // A reader past its first report: its slot is in the block the engine leased for it.
            (_, closing, _) = await ReadPastTheFirstReportAsync(engine, pair);

            held.TakeEvery(engine);
            int taken = 0;
            while (slots.Take(0) is not null)
            {
                taken++;
            }

            output.WriteLine($"held {held.Count} blocks; took the engine's other {taken} slots");
            Assert.Equal(AccelTrack.Block - AccelTrack.FirstSlot - 1, taken);
        }

        var clock = Stopwatch.StartNew();
        while ((slots.Peek(closing) & AccelTrack.Closed) == 0 && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(10);
        }

        Assert.NotEqual(0UL, slots.Peek(closing) & AccelTrack.Closed);
        ReportSlot? next = slots.Take(0);
        Assert.NotNull(next);
        Assert.Equal(closing, next.Slot);
    }

    /// <summary>A connection can outlive the engine that gave its reader a slot (an application's host stopped, its
    /// sockets still open): the next engine leases the freed block and gives its first reader the same slot. When the old
    /// connection closes, accel_sockops must not mark that slot, which is no longer the old reader's (its tag differs):
    /// the mark would end the new reader's stores, and its writer, seeing no report, would move to TCP at the bound.</summary>
    [KernelFact]
    public async Task A_connection_that_outlives_its_engine_leaves_the_slot_of_the_next_engines_reader_alone()
    {
        SocketPair old;
        AccelKey oldKey;
        uint oldSlot, oldTag;
        using (var first = AccelerationEngine.Start(fixture.Environment.Options()))
        {
            Assert.True(first.IsEnabled, first.Status.Message);
            old = await SocketPair.ConnectAsync(first, reportsConsumption: true);
            (oldKey, oldSlot, oldTag) = await ReadPastTheFirstReportAsync(first, old);
        }

        using (old)
        using (var second = AccelerationEngine.Start(fixture.Environment.Options()))
        using (var pair = await SocketPair.ConnectAsync(second, reportsConsumption: true))
        {
            Assert.True(second.IsEnabled, second.Status.Message);
            (_, uint slot, uint tag) = await ReadPastTheFirstReportAsync(second, pair);
            output.WriteLine($"the old reader's slot {oldSlot}, the new reader's slot {slot} (tag {tag})");
            // What makes this test: the freed block is the lowest, so the next engine leases it and hands out its first slot.
            Assert.Equal(oldSlot, slot);
            // The slot kept its tag while free, and its next reader got the one after it: the old connection's tag could
            // match again only after 65,535 more readers.
            Assert.Equal(oldTag % 0xffff + 1, tag);
            long? before = second.ReportSlots!.Read(slot, tag);
            Assert.NotNull(before);

            old.Dispose();
            var clock = Stopwatch.StartNew();
            while (second.Kernel!.ReadFlow(oldKey, out _) >= 0 && clock.Elapsed < TimeSpan.FromSeconds(5))
            {
                await Task.Delay(10); // accel_sockops deletes the old reader's entry when its connection closes
            }

            Assert.True(second.Kernel.ReadFlow(oldKey, out _) < 0, "the old connection's entry outlived its close");
            ulong value = second.ReportSlots.Peek(slot);
            output.WriteLine($"the slot after the old connection closed: {value:x16}");
            Assert.Equal(before, second.ReportSlots.Read(slot, tag));
            pair.ServerRegistration.ReportConsumed(before.Value + second.ReportStep);
            Assert.Equal(before.Value + second.ReportStep, second.ReportSlots.Read(slot, tag)); // its stores go on
        }
    }

    /// <summary>Sends past the reader's first report and reads it all, reporting: the reader then has a slot.</summary>
    private static async Task<(AccelKey Key, uint Slot, uint Tag)> ReadPastTheFirstReportAsync(AccelerationEngine engine, SocketPair pair)
    {
        long total = engine.ReportStep + 4096;
        Task write = CounterStream.WriteAsync(pair.Client, total, 64 * 1024, CancellationToken.None);
        Assert.Null(await CounterStream.VerifyAsync(pair.Server, total, pause: null, CancellationToken.None, pair.ServerRegistration.ReportConsumed));
        await write;
        AccelKey key = engine.ReadState(pair.Server)!.Value.Key;
        Assert.True(engine.Kernel!.ReadFlow(key, out AccelFlow flow) >= 0);
        Assert.NotEqual(0u, flow.Slot);
        return (key, flow.Slot, flow.Tag);
    }
}
