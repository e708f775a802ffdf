using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>Faults on the real kernel: the survivor of a killed peer never hangs and never reads a wrong
/// byte; churn leaks nothing.</summary>
[Collection(KernelCollection.Name)]
public sealed class FaultTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelFact]
    public async Task A_peer_killed_mid_stream_leaves_errors_or_EOF_never_a_hang_or_a_wrong_byte()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        engine.PrepareListener(listener);
        listener.Listen(512);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        const int connections = 100;

        // A bystander connection in this process that must not notice anything.
        using var bystander = await SocketPair.ConnectAsync(engine);
        long consumed = 0;
        Task bystanderWrite = CounterStream.WriteAsync(bystander.Client, 64L << 20, 64 * 1024, default, window: 2L << 20, () => Interlocked.Read(ref consumed));
        Task<string?> bystanderRead = CounterStream.VerifyAsync(bystander.Server, 64L << 20, pause: null, default, n =>
        {
            Interlocked.Exchange(ref consumed, n);
            bystander.ServerRegistration.ReportConsumed(n);
        });

        // The peer process streams on 100 connections without end, both ways; it is killed mid-stream.
        using var peer = Peer.Start(fixture.Environment, [], "connect", "--ports", $"{port},{port},{port}", "--connections", $"{connections}",
            "--messages", "100000000", "--max-size", "4096", "--mixed", "false");
        var served = new List<Task<StressEndResult>>();
        for (int i = 0; i < connections; i++)
        {
            Socket s = await listener.AcceptAsync();
            int clientPort = ((IPEndPoint)s.RemoteEndPoint!).Port;
            served.Add(Task.Run(async () =>
            {
                using (s)
                {
                    return await StressEnd.RunAsync(engine, s, clientPort, isClient: false, StressMode.Prepared, StressListener.Prepared, 100_000_000, 4096, default);
                }
            }));
        }

        await Task.Delay(1500);
        peer.Kill();
        var clock = Stopwatch.StartNew();
        Task all = Task.WhenAll(served);
        Assert.True(await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(60))) == all, "a survivor hung after its peer was killed");
        output.WriteLine($"all {connections} survivors finished {clock.ElapsedMilliseconds} ms after the kill");

        StressEndResult[] results = await Task.WhenAll(served);
        foreach (var g in results.GroupBy(r => r.Error?.Split(':')[0] ?? "none"))
        {
            output.WriteLine($"{g.Count(),4} x {g.Key}");
        }

        // Each survivor saw its peer die (EOF or a reset/broken pipe), and none saw a wrong or extra byte.
        Assert.All(results, r => Assert.NotNull(r.Error));
        Assert.DoesNotContain(results, r => r.Error!.Contains("expected 0x", StringComparison.Ordinal) || r.Error.Contains("past the end", StringComparison.Ordinal));
        Assert.Contains(results, r => r.RedirectedBytes > 0);

        await bystanderWrite;
        Assert.Null(await bystanderRead);
    }

    [KernelFact]
    public async Task Ten_thousand_connections_in_churn_leak_no_map_entry_fd_or_count()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        int entries = Wire.SockhashEntries(engine);
        int fds = Directory.GetFiles("/proc/self/fd").Length;
        long registered = engine.GetStatistics().RegisteredSockets;
        long redirected = engine.GetStatistics().RedirectedBytes;
        const int total = 10_000, parallel = 50;

        await Parallel.ForEachAsync(Enumerable.Range(0, total), new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (i, _) =>
        {
            using var pair = await SocketPair.ConnectAsync(engine);
            byte[] data = BitConverter.GetBytes(i);
            await pair.Client.SendAsync(data);
            byte[] got = new byte[4];
            int n = 0;
            while (n < 4)
            {
                n += await pair.Server.ReceiveAsync(got.AsMemory(n));
            }

            Assert.Equal(i, BitConverter.ToInt32(got));
        });

        var stats = engine.GetStatistics();
        output.WriteLine($"{stats}");
        Assert.Equal(entries, Wire.SockhashEntries(engine));
        // No growth (other tests' descriptors may close meanwhile, so fewer is fine).
        Assert.True(Directory.GetFiles("/proc/self/fd").Length <= fds + 5, $"{Directory.GetFiles("/proc/self/fd").Length} fds, {fds} before");
        Assert.Equal(registered + 2 * total, stats.RegisteredSockets);
        Assert.Equal(redirected + 4L * total, stats.RedirectedBytes);
    }
}
