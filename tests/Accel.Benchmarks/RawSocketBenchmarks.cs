using System.Diagnostics;
using System.Net.Sockets;
using Accel.Benchmarks.Paired;
using Accel.Testing;

namespace Accel.Benchmarks;

/// <summary>Socket-level cases: ping-pong round trips and bulk throughput, plus the cost of a socket that is in
/// the map but not accelerated, and start-up.</summary>
internal static class RawSocketBenchmarks
{
    /// <summary>The columns of the round-trip table, against plain TCP.</summary>
    public static readonly (string Mode, string Title)[] Columns =
        [("tcp-aa", "A/A"), ("accel", "accelerated / TCP"), ("floor", "one-lookup redirect (the kernel's floor) / TCP"), ("uds", "UDS / TCP"), ("in-map", "in the map, peer without the library / TCP"), ("left", "left the map / TCP")];

    /// <summary>Round trips between two threads over long-lived pairs, modes switched slice by slice (see
    /// <see cref="PairedRunner"/>): plain TCP, a second plain TCP pair (A/A), accelerated, Unix domain socket, and two
    /// pairs whose client is in the fast path and whose server is not (a same-host peer without the library): one
    /// client stays in the map after its first send found no peer (what leaving saves: every send pays the sk_msg path
    /// for a verdict of TCP), one left it (<see cref="SocketRegistration.TryLeaveFastPath"/>, as the HTTP client and
    /// the process-scope tracker do). And a pair redirected by <see cref="MinimalRedirect"/>, the least any sk_msg
    /// redirect can cost: the ceiling of the accelerated pair's ratio.</summary>
    public static async Task<IReadOnlyList<Metric>> PairedRoundTripsAsync(AccelerationEngine engine, Settings settings)
    {
        string[] modes = ["tcp", "tcp-aa", "accel", "floor", "uds", "in-map", "left"];
        using var minimal = new MinimalRedirect();
        var pairs = new Dictionary<string, BenchPair>
        {
            ["tcp"] = BenchPair.Create(Transport.Tcp, engine),
            ["tcp-aa"] = BenchPair.Create(Transport.Tcp, engine),
            ["accel"] = BenchPair.Create(Transport.Accelerated, engine),
            ["floor"] = minimal.CreatePair(engine),
            ["uds"] = BenchPair.Create(Transport.Uds, engine),
            ["in-map"] = BenchPair.ToPlainPeer(engine, leave: false),
            ["left"] = BenchPair.ToPlainPeer(engine, leave: true),
        };
        try
        {
            var cases = new[] { 64, 1024, 16 * 1024 }.Select(size =>
            {
                var p50 = new Metric($"rtt-{size}", $"raw socket round trip {Report.Size(size)}, p50", "us", HigherIsBetter: false);
                // The two TCP pairs trade places every round. A pair can be steadily a percent faster than another
                // (its threads, its ports' hash buckets), which this case's tight intervals resolve; the A/A row is to
                // show what the baseline's choice is worth, so that choice has to vary. PairedRunner runs each mode once
                // to warm up and then twice a round: the n-th slice of a mode belongs to round (n - 1) / 2.
                var slices = new Dictionary<string, int>();
                return new PairedCase(p50.Title, [p50], mode =>
                {
                    BenchPair pair = pairs[mode];
                    if (mode is "tcp" or "tcp-aa")
                    {
                        int n = slices[mode] = slices.GetValueOrDefault(mode, -1) + 1;
                        bool swapped = Math.Max(0, n - 1) / 2 % 2 == 1;
                        pair = swapped ? pairs[mode == "tcp" ? "tcp-aa" : "tcp"] : pair;
                    }

                    return Task.FromResult<IReadOnlyDictionary<string, double>>(
                        new Dictionary<string, double> { [p50.Id] = PingPong(pair, size, settings.RoundTripsPerSlice(size)).P50 });
                });
            }).ToList();
            await PairedRunner.RunAsync("raw sockets", modes, settings.Rounds, cases);
            MinimalRedirect.EnsureRedirected(pairs["floor"], pairs["floor"].ReadA + pairs["floor"].ReadB);
            return cases.SelectMany(c => c.Metrics).ToList();
        }
        finally
        {
            foreach (BenchPair p in pairs.Values)
            {
                p.Dispose();
            }
        }
    }

    public static Task RunAsync(KernelTestEnvironment env, Settings settings, Report report, AccelerationEngine engine)
    {
        for (int rep = 0; rep < 3; rep++)
        {
            var again = Stopwatch.StartNew();
            using var joined = AccelerationEngine.Start(env.Options());
            report.Add("startup", "engine start, joining pinned objects", "ms", Transport.Accelerated, again.Elapsed.TotalMilliseconds);
        }

        for (int rep = 0; rep < settings.Repetitions; rep++)
        {
            foreach (Transport t in Rotate(rep))
            {
                // As the library's transports do: the reader reports what it read and the writer waits for it at the
                // bound. Without both the direction moves to TCP after the bound's first 4 MiB, and the row measured
                // TCP under another name (until 2026-12-03).
                using var pair = BenchPair.Create(t, engine, reportsConsumption: true);
                report.Add("bulk", "bulk throughput, 64 KiB writes", "MB/s", t, Bulk(pair, settings.BulkBytes, paced: true));
                AddRedirectedShare(report, "bulk-share", "bulk: share of the accelerated writer's bytes redirected", t, pair);
            }

            // In the map, verdict TCP (its peer is not accelerated): pays the sk_msg program on every send.
            using (var plain = BenchPair.Create(Transport.Tcp, engine))
            {
                report.Add("notaccel", "bulk, socket in the map but not accelerated", "MB/s", Transport.Tcp, Bulk(plain, settings.BulkBytes));
            }

            using (var inMap = BenchPair.Create(Transport.Accelerated, engine, prepareServer: false))
            {
                report.Add("notaccel", "bulk, socket in the map but not accelerated", "MB/s", Transport.Accelerated, Bulk(inMap, settings.BulkBytes));
            }

            Console.WriteLine($"raw sockets: repetition {rep + 1}/{settings.Repetitions} done");
        }

        AcrossNamespaces(env, settings, report);
        MemoryPerConnection(engine, report);
        return Task.CompletedTask;
    }

    /// <summary>The sk_msg program's own cost, ns per message, from the kernel's BPF statistics over raw accelerated
    /// 64 B round trips (two messages each): the program alone, without HTTP around it.</summary>
    public static (double MessageNs, long Messages) ProgramCost(AccelerationEngine engine, int roundTrips)
    {
        using var pair = BenchPair.Create(Transport.Accelerated, engine);
        PingPong(pair, 64, 1000);
        using IDisposable? stats = engine.EnableProgramStatistics();
        var before = engine.ReadProgramStatistics();
        PingPong(pair, 64, roundTrips);
        var after = engine.ReadProgramStatistics();
        long messages = (long)(after.Message.Runs - before.Message.Runs);
        return ((after.Message.Ns - before.Message.Ns) / (double)Math.Max(1, messages), messages);
    }

    /// <summary>Two network namespaces joined by veth, where the TCP path is longest (two stacks, a veth pair).
    /// Peers in the namespaces count as same-host through SameHostPeerRanges.</summary>
    private static void AcrossNamespaces(KernelTestEnvironment env, Settings settings, Report report)
    {
        using var net = NamespacePair.Create();
        var options = env.Options();
        options.SameHostPeerRanges.Add(net.Range);
        using var engine = AccelerationEngine.Start(options);
        for (int rep = 0; rep < settings.Repetitions; rep++)
        {
            foreach (Transport t in new[] { Transport.Tcp, Transport.Accelerated }.Skip(rep % 2).Concat(new[] { Transport.Tcp, Transport.Accelerated }.Take(rep % 2)))
            {
                foreach (int size in new[] { 64, 16 * 1024 })
                {
                    using var pair = BenchPair.CreateAcross(net, t, engine);
                    report.Add("veth", $"across namespaces (veth): round trip {Report.Size(size)}, p50", "us", t, PingPong(pair, size, settings.RoundTrips(size)).P50);
                }

                using var bulk = BenchPair.CreateAcross(net, t, engine, reportsConsumption: true);
                report.Add("veth-bulk", "across namespaces (veth): bulk throughput", "MB/s", t, Bulk(bulk, settings.BulkBytes, paced: true));
                AddRedirectedShare(report, "bulk-share", "across namespaces (veth): share of the accelerated writer's bytes redirected", t, bulk);
            }
        }

        Console.WriteLine("across namespaces: done");
    }

    /// <summary>Kernel slab memory per socket added by the fast path (socket storage, the sockhash entry, the
    /// psock): 1,000 accelerated pairs against 1,000 plain ones, idle.</summary>
    private static void MemoryPerConnection(AccelerationEngine engine, Report report)
    {
        const int pairs = 1000;
        foreach (Transport t in new[] { Transport.Tcp, Transport.Accelerated, Transport.Tcp, Transport.Accelerated })
        {
            long before = SlabKiB();
            var open = Enumerable.Range(0, pairs).Select(_ => BenchPair.Create(t, engine)).ToList();
            long after = SlabKiB();
            foreach (var p in open)
            {
                p.Dispose();
            }

            report.Add("memory", "kernel slab per connected socket (idle)", "B", t, (after - before) * 1024.0 / (2 * pairs));
            Thread.Sleep(500);
        }

        Console.WriteLine("memory per connection: done");
    }

    private static long SlabKiB()
        => long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("Slab:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    /// <summary>Transports in a different order each repetition, so that none always goes first.</summary>
    public static IEnumerable<Transport> Rotate(int rep)
    {
        var all = Enum.GetValues<Transport>();
        return all.Skip(rep % all.Length).Concat(all.Take(rep % all.Length));
    }

    internal static (double P50, double P99) PingPong(BenchPair pair, int size, int iterations)
    {
        byte[] sendBuf = new byte[size];
        byte[] recvBuf = new byte[size];
        byte[] echoBuf = new byte[size];
        var echo = new Thread(() =>
        {
            for (int i = 0; i < iterations + 200; i++)
            {
                pair.ReadB += ReceiveExactly(pair.B, echoBuf, pair.RegistrationB, pair.ReadB);
                pair.B.Send(echoBuf);
            }
        }) { IsBackground = true };
        echo.Start();

        var samples = new double[iterations];
        for (int i = 0; i < iterations + 200; i++)
        {
            long start = Stopwatch.GetTimestamp();
            pair.A.Send(sendBuf);
            pair.ReadA += ReceiveExactly(pair.A, recvBuf, pair.RegistrationA, pair.ReadA);
            if (i >= 200)
            {
                samples[i - 200] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }
        }

        echo.Join();
        Array.Sort(samples);
        return (samples[iterations / 2], samples[iterations * 99 / 100]);
    }

    /// <summary>Bulk throughput of each transport, alternated, with where the accelerated writer's bytes went and how
    /// long a paced writer (one that waits for its reader, as the library's transports do) waited: printed, for work on
    /// the data path.</summary>
    public static string BulkOnly(AccelerationEngine engine, Settings settings)
    {
        var text = new System.Text.StringBuilder();
        for (int rep = 0; rep < 4; rep++)
        {
            foreach (var (name, transport, paced) in new[] { ("TCP", Transport.Tcp, false), ("accelerated", Transport.Accelerated, false), ("accelerated, reader reports, writer paces", Transport.Accelerated, true), ("UDS", Transport.Uds, false) })
            {
                using var pair = BenchPair.Create(transport, engine, reportsConsumption: paced);
                double mbs = Bulk(pair, settings.BulkBytes * 4, paced);
                string where = pair.RegistrationA?.GetStatistics() is { } st
                    ? $"; redirected {st.RedirectedBytes >> 20} MiB, TCP {st.TcpBytes >> 20} MiB ({st.TcpReason ?? "-"}), paced writes {st.PacedWrites} waiting {st.PacedTime.TotalMilliseconds:0} ms"
                    : "";
                text.AppendLine($"{name}: {mbs:0} MB/s{where}");
            }
        }

        return text.ToString();
    }

    private static double Bulk(BenchPair pair, long total, bool paced = false)
    {
        const int chunk = 64 * 1024;
        var writer = new Thread(() =>
        {
            byte[] buf = new byte[chunk];
            for (long sent = 0; sent < total; sent += chunk)
            {
                if (paced && pair.RegistrationA is { } registration)
                {
                    registration.WaitToSendAsync(chunk).AsTask().GetAwaiter().GetResult();
                }

                pair.A.Send(buf);
            }
        }) { IsBackground = true };
        byte[] rbuf = new byte[256 * 1024];
        var clock = Stopwatch.StartNew();
        writer.Start();
        long got = 0;
        while (got < total)
        {
            int n = pair.B.Receive(rbuf);
            if (n == 0)
            {
                throw new IOException("EOF during bulk transfer");
            }

            got += n;
            pair.RegistrationB?.ReportConsumed(got);
        }

        writer.Join();
        return total / clock.Elapsed.TotalSeconds / 1e6;
    }

    /// <summary>What share of an accelerated pair's writer's bytes were redirected: a bulk figure is the fast path's only
    /// where it is 100%.</summary>
    private static void AddRedirectedShare(Report report, string group, string @case, Transport t, BenchPair pair)
    {
        if (pair.RegistrationA?.GetStatistics() is { } st)
        {
            report.Add(group, @case, "%", t, 100.0 * st.RedirectedBytes / Math.Max(1, st.RedirectedBytes + st.TcpBytes));
        }
    }

    private static int ReceiveExactly(Socket s, byte[] buffer, SocketRegistration? registration, long soFar)
    {
        int n = 0;
        while (n < buffer.Length)
        {
            int r = s.Receive(buffer, n, buffer.Length - n, SocketFlags.None);
            if (r == 0)
            {
                throw new IOException("EOF");
            }

            n += r;
            registration?.ReportConsumed(soFar + n);
        }

        return n;
    }
}
