using System.Diagnostics;
using Accel.Testing;
using Accel.Native.Abi;
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
}
