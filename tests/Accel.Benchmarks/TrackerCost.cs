using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Accel.Testing;

namespace Accel.Benchmarks;

/// <summary>
/// What process scope's read tracker costs: its thread's CPU time (from the kernel's schedstat) with 10,000 idle
/// sockets in scope (none, then all tracked), and with 1,000 busy connections (2,000 tracked sockets) echoing 64 KiB
/// messages as fast as they can in this one process, where it reports their reads, with the default bound and a larger
/// one (bursts at memory speed can outrun a thread that wakes every millisecond).
/// </summary>
internal static class TrackerCost
{
    public sealed record Result(int IdleSockets, double NoSocketsUsPerSecond, int Tracked, double IdleTrackedUsPerSecond, int BusyConnections, Busy DefaultBound, Busy LargeBound);

    public sealed record Busy(long Bound, double TrackerUsPerSecond, double ProcessUsPerSecond, double ReportsPerSecond, double MegabytesPerSecond, long Degraded, double RedirectedShare);

    public static async Task<Result> MeasureAsync(KernelTestEnvironment env)
    {
        int idlePairs = int.TryParse(Environment.GetEnvironmentVariable("ACCEL_TRACKER_IDLE_PAIRS"), out int ip) ? ip : 5000;
        int busyPairs = int.TryParse(Environment.GetEnvironmentVariable("ACCEL_TRACKER_BUSY_PAIRS"), out int bp) ? bp : 1000;
        TimeSpan window = TimeSpan.FromSeconds(5);

        // Idle: the tracker's own wakeups with no socket in scope, then with every socket of 5,000 idle connections
        // tracked (each gets a slot as the kernel inserts it).
        var idleOptions = env.Options();
        idleOptions.Scope = AccelerationScope.Process;
        double untracked, tracked;
        int trackedCount;
        using (var engine = AccelerationEngine.Start(idleOptions))
        {
            var tracker = engine.Scope?.Tracker ?? throw new InvalidOperationException($"no read tracker: {engine.Status.Message}");
            untracked = await ThreadCpuPerSecondAsync(tracker, window);
            var pairs = await OpenAsync(idlePairs);
            try
            {
                var clock = Stopwatch.StartNew();
                while (tracker.TrackedSockets < 2 * idlePairs && clock.Elapsed < TimeSpan.FromSeconds(60))
                {
                    await Task.Delay(100);
                }

                trackedCount = tracker.TrackedSockets;
                tracked = await ThreadCpuPerSecondAsync(tracker, window);
            }
            finally
            {
                Close(pairs);
            }
        }

        Console.WriteLine($"tracker: idle done ({trackedCount} tracked)");

        var defaultBound = await BusyAsync(env, busyPairs, 4L << 20, window);
        var largeBound = await BusyAsync(env, busyPairs, 64L << 20, window);
        return new Result(2 * idlePairs, untracked, trackedCount, tracked, busyPairs, defaultBound, largeBound);
    }

    /// <summary>Every connection echoes 64 KiB messages as fast as it can until the window ends; the tracker's and the
    /// process's CPU time are measured after a 2 s start.</summary>
    private static async Task<Busy> BusyAsync(KernelTestEnvironment env, int pairs, long bound, TimeSpan window)
    {
        var options = env.Options();
        options.Scope = AccelerationScope.Process;
        options.MaxRedirectedBacklogBytes = bound;
        using var engine = AccelerationEngine.Start(options);
        var tracker = engine.Scope?.Tracker ?? throw new InvalidOperationException($"no read tracker: {engine.Status.Message}");
        var busy = await OpenAsync(pairs);
        try
        {
            using var stop = new CancellationTokenSource();
            long bytes = 0;
            var loops = busy.Select(p => Task.Run(async () =>
            {
                byte[] data = new byte[64 << 10], sink = new byte[64 << 10];
                while (!stop.IsCancellationRequested)
                {
                    await ExchangeAsync(p.A, p.B, data, sink);
                    await ExchangeAsync(p.B, p.A, data, sink);
                    Interlocked.Add(ref bytes, 2L * data.Length);
                }
            })).ToList();
            await Task.Delay(TimeSpan.FromSeconds(2));
            long bytesBefore = Interlocked.Read(ref bytes), reportsBefore = tracker.Publications;
            TimeSpan processBefore = Process.GetCurrentProcess().TotalProcessorTime;
            double trackerUs = await ThreadCpuPerSecondAsync(tracker, window);
            double processUs = (Process.GetCurrentProcess().TotalProcessorTime - processBefore).TotalMicroseconds / window.TotalSeconds;
            double reports = (tracker.Publications - reportsBefore) / window.TotalSeconds;
            double mb = (Interlocked.Read(ref bytes) - bytesBefore) / 1e6 / window.TotalSeconds;
            stop.Cancel();
            await Task.WhenAll(loops);
            AccelerationStatistics stats = engine.GetStatistics();
            Console.WriteLine($"tracker: busy done (bound {bound >> 20} MiB)");
            return new Busy(bound, trackerUs, processUs, reports, mb, stats.DegradedDirections, stats.RedirectedBytes / (double)Math.Max(1, stats.RedirectedBytes + stats.TcpBytes));
        }
        finally
        {
            Close(busy);
        }
    }

    private static async Task ExchangeAsync(Socket from, Socket to, byte[] data, byte[] sink)
    {
        Task<int> send = from.SendAsync(data);
        for (int got = 0; got < data.Length;)
        {
            got += await to.ReceiveAsync(sink.AsMemory(got));
        }

        await send;
    }

    /// <summary>Pairs of sockets in this process, made while the engine is in scope (no Prepare* call).</summary>
    private static async Task<List<(Socket A, Socket B)>> OpenAsync(int count)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4096);
        var pairs = new List<(Socket, Socket)>(count);
        for (int i = 0; i < count; i++)
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            Task<Socket> accept = listener.AcceptAsync();
            await client.ConnectAsync(listener.LocalEndPoint!);
            pairs.Add((client, await accept));
        }

        return pairs;
    }

    private static void Close(List<(Socket A, Socket B)> pairs)
    {
        foreach (var (a, b) in pairs)
        {
            a.Dispose();
            b.Dispose();
        }
    }

    /// <summary>The tracker thread's CPU time per second of wall time over <paramref name="window"/>, in microseconds.</summary>
    private static async Task<double> ThreadCpuPerSecondAsync(Accel.Internal.ConsumptionTracker tracker, TimeSpan window)
    {
        while (tracker.ThreadId == 0)
        {
            await Task.Delay(10);
        }

        string schedstat = $"/proc/self/task/{tracker.ThreadId}/schedstat";
        long before = long.Parse(File.ReadAllText(schedstat).Split(' ')[0]);
        var clock = Stopwatch.StartNew();
        await Task.Delay(window);
        long after = long.Parse(File.ReadAllText(schedstat).Split(' ')[0]);
        return (after - before) / 1000.0 / clock.Elapsed.TotalSeconds;
    }
}
