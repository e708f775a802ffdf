using System.Diagnostics;
using Accel.Benchmarks.Paired;
using Accel.Testing;

namespace Accel.Benchmarks.Http;

/// <summary>
/// HTTP/1.1 and h2c between two long-lived processes (this one, the client; <see cref="BenchServer"/>), with the
/// modes switched slice by slice: no library at all, the same again (A/A), the library turned off, accelerated, and a
/// Unix domain socket. Then, in separate passes that would disturb the timing: syscalls per request (strace) and
/// the sk_msg program's own cost (the kernel's BPF statistics).
/// </summary>
internal static class PairedHttpBenchmarks
{
    public static readonly string[] Modes = ["none", "none-aa", "factory", "off", "accel", "handler", "floor", "factory-floor", "plain", "to-plain", "uds"];

    /// <summary>The modes of a quick run: those the target check compares (no library, A/A, off, accelerated, the
    /// factory client without the library that explains the accelerated one, the handler client, the one-lookup
    /// redirect that measures the ceiling, and the same redirect under the factory client: the accelerated client's
    /// own ceiling) and UDS. The mixed deployments are left to the full run.</summary>
    public static readonly string[] QuickModes = ["none", "none-aa", "factory", "off", "accel", "handler", "floor", "factory-floor", "uds"];

    public static async Task<HttpResults> RunAsync(KernelTestEnvironment env, Settings settings, AccelerationEngine engine)
    {
        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        var cases = SequentialCases(clients, settings);
        foreach (string proto in new[] { "h1", "h2c" })
        {
            cases.Add(Concurrent(clients, proto, 1024, 64, settings.SliceDuration));
        }

        if (!settings.Quick)
        {
            cases.Add(Large(clients, "h2c", settings.LargeBody, settings.LargeSlice));
            cases.AddRange(from proto in new[] { "h1", "h2c" } select Upload(clients, proto, settings.LargeBody, settings.LargeSlice));
        }

        await PairedRunner.RunAsync("http", settings.Quick ? QuickModes : Modes, settings.Rounds, cases, clients.RenewAsync);
        rig.Floor.EnsureClientsRedirected();
        IReadOnlyList<Metric> services = settings.Quick ? [] : await ServiceBenchmarks.RunAsync(clients, settings);

        var stats = await AcceleratedAppStatsAsync(clients);
        long redirected = stats.GetProperty("redirectedBytes").GetInt64(), tcp = stats.GetProperty("tcpBytes").GetInt64();
        var syscalls = await SyscallsPerRequestAsync(clients);
        var profiles = await ProfilesAsync(clients);
        var program = await ProgramCostAsync(clients, engine, rig.Floor);
        return new HttpResults(cases.SelectMany(c => c.Metrics).ToList(), services, redirected / (double)Math.Max(1, redirected + tcp),
            stats.GetProperty("pacedWrites").GetInt64(), stats.GetProperty("degradedDirections").GetInt64(), syscalls, program, profiles);
    }

    /// <summary>HTTP/1.1 and h2c, 1 KiB and 256 KiB, requests one after another.</summary>
    private static List<PairedCase> SequentialCases(ModeClients clients, Settings settings)
        => [.. from proto in new[] { "h1", "h2c" } from size in new[] { 1024, 256 * 1024 } select Sequential(clients, proto, size, settings.SequentialRequests(size))];

    /// <summary>The load <see cref="ProfilesAsync"/> profiles: 1 KiB responses, 64 concurrent, which the report's split
    /// is of; <c>ACCEL_PROFILE_LOAD=&lt;bytes&gt;x&lt;concurrency&gt;</c> (e.g. <c>262144x1</c>) profiles another, for
    /// <c>--profile-only</c>.</summary>
    private static (int Size, int Concurrency) ProfiledLoad { get; } =
        Environment.GetEnvironmentVariable("ACCEL_PROFILE_LOAD")?.Split('x') is [var size, var concurrency]
        && int.TryParse(size, out int s) && int.TryParse(concurrency, out int c) && s > 0 && c > 0 ? (s, c) : (1024, 64);

    /// <summary>The modes <see cref="ProfilesAsync"/> profiles: none and accel, which the report's split compares, and
    /// with <c>ACCEL_PROFILE_MODES</c> (comma-separated, e.g. <c>handler,floor</c>) others beside them, for
    /// <c>--profile-only</c> when working on the data path (with <c>ACCEL_PROFILE_KEEP</c>, to compare their
    /// symbols with perf report).</summary>
    private static string[] ProfiledModes { get; } = ["none", "accel", .. (Environment.GetEnvironmentVariable("ACCEL_PROFILE_MODES") ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(m => Modes.Contains(m) && m is not "none" and not "accel")];

    /// <summary>The CPU split (<see cref="CpuProfile"/>) of both processes under the 64-way 1 KiB load, without the
    /// library and accelerated, for both protocols, with each class's time per request and the scheduler events
    /// per request from a slice of their own. Three rounds, the modes' order alternating; each figure is the median of
    /// the rounds (one profile of a few seconds varies by a third from run to run in its TCP/IP time).</summary>
    private static async Task<Dictionary<string, ProfileRun>> ProfilesAsync(ModeClients clients)
    {
        const int rounds = 3;
        var duration = TimeSpan.FromSeconds(3);
        var runs = new Dictionary<string, List<ProfileRun>>();
        int[] pids = [clients.ServerPid, Environment.ProcessId];
        for (int round = 0; round < rounds; round++)
        {
            foreach (string proto in new[] { "h1", "h2c" })
            {
                foreach (string mode in round % 2 == 0 ? ProfiledModes : ProfiledModes.Reverse())
                {
                    PairedCase load = Concurrent(clients, proto, ProfiledLoad.Size, ProfiledLoad.Concurrency, duration + TimeSpan.FromSeconds(0.5));
                    IReadOnlyDictionary<string, double>? sampled = null;
                    var split = await CpuProfile.MeasureAsync(pids, async () => sampled = await load.Slice(mode), duration);
                    IReadOnlyDictionary<string, double>? counted = null;
                    var events = await CpuProfile.CountEventsAsync(pids, async () => counted = await load.Slice(mode), duration);
                    if (split is not null && sampled is not null)
                    {
                        // perf stat counts for `duration` of the slice.
                        double requests = counted is null ? 0 : counted[$"{proto}-rps"] * duration.TotalSeconds;
                        var run = new ProfileRun(split, sampled[$"{proto}-cpu"],
                            events is null || requests == 0 ? null : events.ToDictionary(kv => kv.Key, kv => kv.Value / requests));
                        string key = $"{proto} {mode}";
                        (runs.TryGetValue(key, out var list) ? list : runs[key] = new List<ProfileRun>()).Add(run);
                    }
                }
            }
        }

        return runs.ToDictionary(kv => kv.Key, kv => ProfileRun.Median(kv.Value));
    }

    /// <summary>The CPU split alone, printed (for working on the data path).</summary>
    public static async Task<string> ProfileOnlyAsync(KernelTestEnvironment env)
    {
        if (ProfiledLoad.Size > BenchServer.MaxDataBytes)
        {
            throw new ArgumentException($"ACCEL_PROFILE_LOAD asks for {ProfiledLoad.Size} B responses; the server's /data endpoint serves at most {BenchServer.MaxDataBytes} B.");
        }

        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        foreach (string proto in new[] { "h1", "h2c" })
        {
            // Warm every profiled mode: the first slices of a fresh process run code the JIT has not optimized yet (a
            // mode left cold had its tier-1 compilation in 15% of its first profile's samples).
            PairedCase warm = Concurrent(clients, proto, 1024, 64, TimeSpan.FromSeconds(3));
            foreach (string mode in ProfiledModes)
            {
                await warm.Slice(mode);
            }
        }

        var text = new System.Text.StringBuilder();
        if (ProfiledLoad != (1024, 64))
        {
            text.AppendLine($"Profiled load (ACCEL_PROFILE_LOAD): {ProfiledLoad.Size} B responses, {ProfiledLoad.Concurrency} concurrent; the titles below name the default load.");
        }

        Report.WriteProfiles(text, await ProfilesAsync(clients));
        return text.ToString();
    }

    /// <summary>The 64-way 1 KiB cases with and without IHttpClientFactory's logging handlers, printed (what the factory
    /// itself costs, apart from the library).</summary>
    public static async Task<string> FactoryOnlyAsync(KernelTestEnvironment env, Settings settings)
    {
        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        var cases = new[] { "h1", "h2c" }.Select(proto => Concurrent(clients, proto, 1024, 64, settings.SliceDuration)).ToList();
        await PairedRunner.RunAsync("factory", ["none", "none-aa", "factory", "factory-quiet", "accel"], settings.Rounds, cases, clients.RenewAsync);
        var metrics = cases.SelectMany(c => c.Metrics).Where(m => !m.Id.EndsWith("csw", StringComparison.Ordinal)).ToList(); // rates, CPU and allocations
        var text = new System.Text.StringBuilder();
        PairedReport.WriteTable(text, metrics, "none",
            [("none-aa", "A/A"), ("factory", "factory / none"), ("factory-quiet", "factory without its loggers / none"), ("accel", "accelerated / none")]);
        PairedReport.WriteTable(text, metrics, "factory", [("factory-quiet", "without its loggers / factory"), ("accel", "accelerated / factory")]);
        return text.ToString();
    }

    /// <summary>The 64-way 1 KiB cases alone, for the modes a change to the data path is judged by, printed against no
    /// library and against the measured ceiling (for working on throughput and CPU).</summary>
    public static async Task<string> ConcurrentOnlyAsync(KernelTestEnvironment env, Settings settings)
    {
        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        var cases = new[] { "h1", "h2c" }.Select(proto => Concurrent(clients, proto, 1024, 64, settings.SliceDuration)).ToList();
        await PairedRunner.RunAsync("concurrent", ["none", "none-aa", "accel", "handler", "floor", "factory-floor"], settings.Rounds, cases, clients.RenewAsync);
        rig.Floor.EnsureClientsRedirected();
        var metrics = cases.SelectMany(c => c.Metrics).ToList(); // rates, CPU, context switches (how often a thread slept) and allocations
        var text = new System.Text.StringBuilder();
        PairedReport.WriteTable(text, metrics, "none",
            [("none-aa", "A/A"), ("accel", "accelerated / none"), ("handler", "handler / none"), ("floor", "one-lookup redirect / none"), ("factory-floor", "factory client through it / none")]);
        PairedReport.WriteTable(text, metrics, "floor", [("handler", "handler / floor")]);
        PairedReport.WriteTable(text, metrics, "factory-floor", [("accel", "accelerated / factory client through the redirect")]);
        return text.ToString();
    }

    /// <summary>The YARP gateway and gRPC cases alone, printed.</summary>
    public static async Task<string> ServicesOnlyAsync(KernelTestEnvironment env, Settings settings)
    {
        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        var metrics = await ServiceBenchmarks.RunAsync(clients, settings);
        var stats = await AcceleratedAppStatsAsync(clients);
        var text = new System.Text.StringBuilder();
        foreach (var (baseline, columns) in ServiceBenchmarks.Tables)
        {
            PairedReport.WriteTable(text, metrics, baseline, columns);
        }

        text.AppendLine($"accelerated server app: {stats.GetProperty("redirectedBytes").GetInt64()} bytes redirected, {stats.GetProperty("tcpBytes").GetInt64()} through TCP, degraded directions {stats.GetProperty("degradedDirections").GetInt64()}");
        return text.ToString();
    }

    /// <summary>The sequential cases alone, every mode, printed (for working on latency).</summary>
    public static async Task<string> LatencyOnlyAsync(KernelTestEnvironment env, Settings settings)
    {
        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        var cases = SequentialCases(clients, settings);
        await PairedRunner.RunAsync("latency", Modes, settings.Rounds, cases, clients.RenewAsync);
        var text = new System.Text.StringBuilder();
        PairedReport.WriteTable(text, cases.SelectMany(c => c.Metrics).ToList(), "none", [.. Modes.Skip(1).Select(m => (m, $"{m} / none"))]);
        // And against the measured ceiling: what the library's clients leave of what a redirect can gain.
        PairedReport.WriteTable(text, cases.SelectMany(c => c.Metrics).ToList(), "floor", [("handler", "handler / floor")]);
        PairedReport.WriteTable(text, cases.SelectMany(c => c.Metrics).ToList(), "factory-floor", [("accel", "accel / factory-floor")]);
        return text.ToString();
    }

    /// <summary>Requests one after another, each on a new connection (<c>Connection: close</c>), every mode, printed:
    /// what the library adds to a connection's set-up and close (its opt-in, the kernel inserting both ends, their
    /// registration, the first write's check for a peer without the library), against what skipping the TCP/IP stack
    /// saves on the request itself. The one-lookup redirect's connect also checks that both ends are in its map (two
    /// lookups, about 4 us).</summary>
    public static async Task<string> ConnectOnlyAsync(KernelTestEnvironment env, Settings settings)
    {
        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        string[] modes = ["none", "none-aa", "factory", "off", "accel", "handler", "floor", "plain", "to-plain", "uds"];
        List<PairedCase> cases = [.. from size in new[] { 1024, 256 * 1024 } select NewConnectionPerRequest(clients, size, 200)];
        await PairedRunner.RunAsync("connect", modes, settings.Rounds, cases, clients.RenewAsync);
        var stats = await AcceleratedAppStatsAsync(clients);
        var text = new System.Text.StringBuilder();
        var metrics = cases.SelectMany(c => c.Metrics).ToList();
        PairedReport.WriteTable(text, metrics, "none", [.. modes.Skip(1).Select(m => (m, $"{m} / none"))]);
        PairedReport.WriteTable(text, metrics, "factory", [("off", "off / factory"), ("accel", "accelerated / factory")]);
        PairedReport.WriteTable(text, metrics, "floor", [("accel", "accelerated / floor"), ("handler", "handler / floor")]);
        text.AppendLine($"accelerated server app: {stats.GetProperty("registeredSockets").GetInt64()} sockets registered, {stats.GetProperty("redirectedBytes").GetInt64()} bytes redirected, {stats.GetProperty("tcpBytes").GetInt64()} through TCP");
        return text.ToString();
    }

    /// <summary>HTTP/1.1 requests one after another, each on a connection of its own (<c>Connection: close</c>: the server
    /// closes it after the response): p50 and p99, connect and close included.</summary>
    internal static PairedCase NewConnectionPerRequest(ModeClients clients, int size, int requests)
    {
        byte[] buffer = new byte[64 * 1024];
        string path = $"/data/{size}";
        return LatencyCase($"h1-{size}-connect", $"HTTP/1.1 {Report.Size(size)} sequential, a new connection per request", requests, mode =>
        {
            HttpClient http = clients[mode, "h1"];
            return () => GetAsync(http, path, size, buffer, closeConnection: true);
        });
    }

    /// <summary>The sk_msg program's cost per message under the same HTTP load as a full run's, beside the one-lookup
    /// redirect's, three times, printed (for working on the program).</summary>
    public static async Task<string> ProgramUnderLoadAsync(KernelTestEnvironment env, AccelerationEngine engine)
    {
        await using var rig = await HttpRig.StartAsync(env);
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < 3; i++)
        {
            ProgramCost cost = await ProgramCostAsync(rig.Clients, engine, rig.Floor);
            text.AppendLine(System.Globalization.CultureInfo.InvariantCulture,
                $"under HTTP load: sk_msg program {cost.RunNs:0} ns per run over {cost.Runs} runs ({cost.NsPerRequest:0} ns per request over {cost.Requests} requests), one-lookup redirect {cost.RedirectUnderLoadNs:0} ns per run over {cost.RedirectRunsUnderLoad} runs; raw: {cost.RawMessageNs:0} and {cost.RedirectFloorNs:0} ns, a program that returns at once {cost.FloorNs:0} ns");
        }

        return text.ToString();
    }

    /// <summary>The large download and uploads alone, against no library and the one-lookup redirect (whose writer
    /// never waits: its queue has no bound), printed with the server's paced writes (for working on pacing and on how
    /// the client sends bodies).</summary>
    public static async Task<string> LargeOnlyAsync(KernelTestEnvironment env, Settings settings)
    {
        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        PairedCase[] cases = [Large(clients, "h2c", settings.LargeBody, settings.LargeSlice),
            .. from proto in new[] { "h1", "h2c" } select Upload(clients, proto, settings.LargeBody, settings.LargeSlice)];
        string[] modes = ["none", "none-aa", "accel", "handler", "floor"];
        await PairedRunner.RunAsync("large", modes, settings.Rounds, cases);
        var stats = await AcceleratedAppStatsAsync(clients);
        var text = new System.Text.StringBuilder();
        var metrics = cases.SelectMany(c => c.Metrics).ToList();
        PairedReport.WriteTable(text, metrics, "none", [("none-aa", "A/A"), ("accel", "accelerated / none"), ("handler", "handler / none"), ("floor", "one-lookup redirect / none")]);
        PairedReport.WriteTable(text, metrics, "floor", [("accel", "accelerated / floor"), ("handler", "handler / floor")]);
        foreach (var metric in metrics)
        {
            foreach (string mode in modes)
            {
                text.AppendLine($"{metric.Id} {mode}: {string.Join(" ", metric.Rounds[mode].Select(v => v.ToString("0")))}");
            }
        }

        text.AppendLine($"server paced writes {stats.GetProperty("pacedWrites").GetInt64()}, degraded directions {stats.GetProperty("degradedDirections").GetInt64()}");
        return text.ToString();
    }

    /// <summary>The accelerated server app's acceleration health data (its /stats).</summary>
    private static async Task<System.Text.Json.JsonElement> AcceleratedAppStatsAsync(ModeClients clients)
        => System.Text.Json.JsonDocument.Parse(await clients["accel", "h1"].GetStringAsync("/stats")).RootElement;

    private static string Name(string proto) => proto == "h1" ? "HTTP/1.1" : "h2c";

    private static string Via(bool gateway) => gateway ? "YARP gateway, " : "";

    /// <summary>Requests one after another: p50 and p99. <paramref name="gateway"/>: through the server's YARP gateway
    /// (<see cref="BenchServer"/>), two hops per request.</summary>
    internal static PairedCase Sequential(ModeClients clients, string proto, int size, int requests, bool gateway = false)
    {
        byte[] buffer = new byte[64 * 1024];
        string path = $"{(gateway ? "/gw" : "")}/data/{size}";
        return LatencyCase($"{(gateway ? "gw-" : "")}{proto}-{size}", $"{Via(gateway)}{Name(proto)} {Report.Size(size)} sequential", requests, mode =>
        {
            HttpClient http = clients[mode, proto];
            return () => GetAsync(http, path, size, buffer);
        });
    }

    /// <summary>64 requests in flight for a slice's duration: requests/s, and per request the CPU time, context
    /// switches and allocated bytes of both processes.</summary>
    internal static PairedCase Concurrent(ModeClients clients, string proto, int size, int concurrency, TimeSpan duration, bool gateway = false)
    {
        string title = $"{Via(gateway)}{Name(proto)} {Report.Size(size)}, {concurrency} concurrent", id = $"{(gateway ? "gw-" : "")}{proto}";
        var rps = new Metric($"{id}-rps", $"{title}, requests/s", "req/s", HigherIsBetter: true);
        var cpu = new Metric($"{id}-cpu", $"{title}, CPU per request (both processes)", "us", HigherIsBetter: false);
        var vcsw = new Metric($"{id}-vcsw", $"{title}, voluntary context switches per request", "1", HigherIsBetter: false);
        var icsw = new Metric($"{id}-icsw", $"{title}, involuntary context switches per request", "1", HigherIsBetter: false);
        var alloc = new Metric($"{id}-alloc", $"{title}, bytes allocated per request (both processes)", "B", HigherIsBetter: false);
        string path = $"{(gateway ? "/gw" : "")}/data/{size}";
        return new PairedCase(rps.Title, [rps, cpu, vcsw, icsw, alloc], ThroughputSlice(id, concurrency, duration, clients, mode =>
        {
            HttpClient http = clients[mode, proto];
            byte[] buffer = new byte[16 * 1024];
            return () => GetAsync(http, path, size, buffer);
        }));
    }

    /// <summary>Calls one after another, each timed, with the modes interleaved call by call: a round makes
    /// <paramref name="calls"/> calls of every mode, in turns through the modes, each turn in a newly shuffled order.
    /// Per mode and round: <c>{id}-p50</c> and <c>{id}-p99</c> in microseconds. <paramref name="caller"/>
    /// gives a mode's call. With a slice of a few hundred calls per mode instead, whatever held for the length of a
    /// slice (which CPUs the two processes' threads sat on, how deeply an idle vCPU slept) weighed on one mode and not
    /// the others: the paired p50 ratios of one run spread from 0.71 to 1.34. Interleaved, the intervals are about ±1%,
    /// tight enough to resolve a connection's lasting edge over another, so the HTTP runs give every mode new
    /// connections each round (<see cref="ModeClients.RenewAsync"/>).</summary>
    internal static PairedCase LatencyCase(string id, string title, int calls, Func<string, Func<Task>> caller)
    {
        var p50 = new Metric($"{id}-p50", $"{title}, p50", "us", HigherIsBetter: false);
        var p99 = new Metric($"{id}-p99", $"{title}, p99", "us", HigherIsBetter: false);
        var shuffle = new Random(11);
        return PairedCase.Interleave(p50.Title, [p50, p99], async modes =>
        {
            Dictionary<string, Func<Task>> call = modes.ToDictionary(mode => mode, caller);
            Dictionary<string, double[]> samples = modes.ToDictionary(mode => mode, _ => new double[calls]);
            string[] turn = [.. modes];
            for (int i = 0; i < calls; i++)
            {
                shuffle.Shuffle(turn);
                foreach (string mode in turn)
                {
                    long start = Stopwatch.GetTimestamp();
                    try
                    {
                        await call[mode]();
                    }
                    catch (StalledRequestException e)
                    {
                        throw e.In($"mode {mode}, call {i}");
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        throw new InvalidOperationException($"{title}: call {i} of mode {mode} failed", e);
                    }

                    samples[mode][i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                }
            }

            return samples.ToDictionary(kv => kv.Key, kv =>
            {
                Array.Sort(kv.Value);
                return (IReadOnlyDictionary<string, double>)new Dictionary<string, double> { [p50.Id] = kv.Value[calls / 2], [p99.Id] = kv.Value[calls * 99 / 100] };
            });
        });
    }

    /// <summary>A slice of <paramref name="concurrency"/> callers, each calling in a loop for <paramref name="duration"/>
    /// (each with its own call from <paramref name="caller"/>): <c>{id}-rps</c> calls per second, and per call the CPU time
    /// (<c>{id}-cpu</c>, microseconds), voluntary and involuntary context switches (<c>{id}-vcsw</c>, <c>{id}-icsw</c>)
    /// and bytes allocated (<c>{id}-alloc</c>) of both processes. A case reports the ones it lists as metrics.</summary>
    internal static Func<string, Task<IReadOnlyDictionary<string, double>>> ThroughputSlice(string id, int concurrency, TimeSpan duration, ModeClients clients, Func<string, Func<Task>> caller)
    {
        int self = Environment.ProcessId, serverPid = clients.ServerPid;
        return async mode =>
        {
            long calls = 0;
            long allocated = -await clients.ServerAllocatedBytesAsync() - GC.GetTotalAllocatedBytes();
            ProcessCounters before = ProcessCounters.Read(self) + ProcessCounters.Read(serverPid);
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                Func<Task> call = caller(mode);
                while (clock.Elapsed < duration)
                {
                    await call();
                    Interlocked.Increment(ref calls);
                }
            }));
            double seconds = clock.Elapsed.TotalSeconds;
            ProcessCounters used = ProcessCounters.Read(self) + ProcessCounters.Read(serverPid) - before;
            allocated += GC.GetTotalAllocatedBytes() + await clients.ServerAllocatedBytesAsync();
            return new Dictionary<string, double>
            {
                [$"{id}-rps"] = calls / seconds,
                [$"{id}-cpu"] = used.CpuNs / 1000.0 / calls,
                [$"{id}-vcsw"] = used.Voluntary / (double)calls,
                [$"{id}-icsw"] = used.Involuntary / (double)calls,
                [$"{id}-alloc"] = allocated / (double)calls,
            };
        };
    }

    /// <summary>Large downloads, repeated until the slice has lasted <paramref name="slice"/>, each read as fast as the
    /// client can (the server paces itself to it when accelerated): MB/s. Each slice has a connection of its own, warmed
    /// by one download that is not counted. A single 64 MiB download lasts under 100 ms here and its rate varied
    /// threefold between slices of one mode (the HTTP/2 flow-control window grows during it, the collector runs or
    /// does not), so a slice spans several; and with one connection per mode for the whole run, two modes on the
    /// same path differed by 15 to 20% in one run (a connection's lasting state), so the connection varies too.</summary>
    private static PairedCase Large(ModeClients clients, string proto, long size, TimeSpan slice)
    {
        var rate = new Metric($"{proto}-large", $"{Name(proto)} {size >> 20} MiB downloads on a warm connection, throughput", "MB/s", HigherIsBetter: true);
        byte[] buffer = new byte[256 * 1024];
        return new PairedCase(rate.Title, [rate], async mode =>
        {
            using HttpClient http = clients.Fresh(mode, proto);
            await GetAsync(http, $"/stream/{size}", size, buffer);
            var (bytes, seconds) = await RepeatForAsync(slice, size, () => GetAsync(http, $"/stream/{size}", size, buffer));
            return new Dictionary<string, double> { [rate.Id] = bytes / seconds / 1e6 };
        });
    }

    /// <summary>Large uploads, the request body written 64 KiB at a time as a streaming client writes it, repeated
    /// until the slice has lasted <paramref name="slice"/> (as <see cref="Large"/>): MB/s.</summary>
    private static PairedCase Upload(ModeClients clients, string proto, long size, TimeSpan slice)
    {
        var rate = new Metric($"{proto}-upload", $"{Name(proto)} {size >> 20} MiB uploads on a warm connection, throughput", "MB/s", HigherIsBetter: true);
        return new PairedCase(rate.Title, [rate], async mode =>
        {
            using HttpClient http = clients.Fresh(mode, proto);
            await PostAsync(http, size);
            var (bytes, seconds) = await RepeatForAsync(slice, size, () => PostAsync(http, size));
            return new Dictionary<string, double> { [rate.Id] = bytes / seconds / 1e6 };
        });
    }

    /// <summary>Makes <paramref name="call"/>, each moving <paramref name="bytesPerCall"/>, one after another until
    /// <paramref name="slice"/> has passed (once at least): the bytes moved and the seconds that took.</summary>
    internal static async Task<(long Bytes, double Seconds)> RepeatForAsync(TimeSpan slice, long bytesPerCall, Func<Task> call)
    {
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        do
        {
            await call();
            bytes += bytesPerCall;
        }
        while (clock.Elapsed < slice);

        return (bytes, clock.Elapsed.TotalSeconds);
    }

    private static async Task PostAsync(HttpClient http, long size)
    {
        StallWatch.Enter(http, "/sink");
        CancellationToken abort = StallWatch.AbortToken;
        try
        {
            using var response = await http.PostAsync("/sink", new StreamedUpload(size), abort);
            response.EnsureSuccessStatusCode();
            string got = await response.Content.ReadAsStringAsync(abort);
            if (got != size.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                throw new InvalidOperationException($"/sink: the server read {got} bytes, expected {size}");
            }
        }
        catch (OperationCanceledException e) when (abort.IsCancellationRequested)
        {
            throw new StalledRequestException($"{http.BaseAddress}sink: no progress for {StallWatch.AbortAfter.TotalSeconds:0} s (see the stall file)", e);
        }
        finally
        {
            StallWatch.Exit();
        }
    }

    /// <summary>A request body of a known length (so not HTTP/1.1-chunked), written 64 KiB at a time.</summary>
    private sealed class StreamedUpload(long size) : HttpContent
    {
        private static readonly byte[] Chunk = new byte[64 * 1024];

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context, CancellationToken cancellationToken)
        {
            for (long sent = 0; sent < size;)
            {
                int n = (int)Math.Min(Chunk.Length, size - sent);
                await stream.WriteAsync(Chunk.AsMemory(0, n), cancellationToken);
                sent += n;
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = size;
            return true;
        }
    }

    private static async Task GetAsync(HttpClient http, string path, long size, byte[] buffer, bool closeConnection = false)
    {
        StallWatch.Enter(http, path);
        CancellationToken abort = StallWatch.AbortToken;
        try
        {
            using var response = closeConnection
                ? await http.SendAsync(new HttpRequestMessage(HttpMethod.Get, path) { Headers = { ConnectionClose = true } }, HttpCompletionOption.ResponseHeadersRead, abort)
                : await http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, abort);
            response.EnsureSuccessStatusCode();
            await using Stream body = await response.Content.ReadAsStreamAsync(abort);
            long got = 0;
            int n;
            while ((n = await body.ReadAsync(buffer, abort)) > 0)
            {
                got += n;
            }

            if (got != size)
            {
                throw new InvalidOperationException($"{path}: {got} bytes, expected {size}");
            }
        }
        catch (OperationCanceledException e) when (abort.IsCancellationRequested)
        {
            throw new StalledRequestException($"{http.BaseAddress}{path.TrimStart('/')}: no progress for {StallWatch.AbortAfter.TotalSeconds:0} s (see the stall file)", e);
        }
        finally
        {
            StallWatch.Exit();
        }
    }

    /// <summary>strace -f -c on both processes while one mode serves sequential 1 KiB requests: the syscalls either
    /// process makes per request, sched_yield apart. That one is the thread pool's idle workers spinning before they
    /// sleep: 20 to 30 a request in every mode, varying by several between passes, it would hide what the data path
    /// does. A separate pass: tracing slows everything down many times.</summary>
    private static async Task<Dictionary<(string Mode, string Proto), (double Others, double Yields)>> SyscallsPerRequestAsync(ModeClients clients)
    {
        var result = new Dictionary<(string, string), (double, double)>();
        foreach (string proto in new[] { "h1", "h2c" })
        {
            foreach (string mode in new[] { "none", "off", "accel" })
            {
                if (await TraceSyscallsAsync(clients, mode, proto) is not { } calls)
                {
                    return result;
                }

                double yields = calls.GetValueOrDefault("sched_yield");
                result[(mode, proto)] = (calls.Values.Sum() - yields, yields);
            }
        }

        return result;
    }

    /// <summary>Which syscalls each mode makes per sequential 1 KiB request, both processes, one column per mode: what a
    /// mode adds, call by call (for working on it).</summary>
    public static async Task<string> SyscallsOnlyAsync(KernelTestEnvironment env)
    {
        await using var rig = await HttpRig.StartAsync(env);
        ModeClients clients = rig.Clients;
        string[] modes = ["none", "factory", "off", "accel", "handler", "floor"];
        // Warm every mode first: the JIT's code writes (mprotect, mmap) would otherwise land in the first mode traced.
        byte[] buffer = new byte[256 * 1024];
        foreach (string proto in new[] { "h1", "h2c" })
        {
            foreach (string mode in modes)
            {
                for (int i = 0; i < 2000; i++)
                {
                    await GetAsync(clients[mode, proto], "/data/1024", 1024, buffer);
                }

                for (int i = 0; i < 200; i++)
                {
                    await GetAsync(clients[mode, proto], "/data/262144", 262144, buffer);
                }
            }
        }

        await Task.Delay(1000); // the tiered JIT's background compiles
        var text = new System.Text.StringBuilder();
        foreach (int size in new[] { 1024, 256 * 1024 })
        {
            foreach (string proto in new[] { "h1", "h2c" })
            {
                var columns = new List<Dictionary<string, double>>();
                foreach (string mode in modes)
                {
                    columns.Add(await TraceSyscallsAsync(clients, mode, proto, size) ?? throw new InvalidOperationException("strace is not installed: apt-get install strace"));
                }

                text.AppendLine($"{Name(proto)} {Report.Size(size)} sequential, syscalls per request (both processes):");
                text.AppendLine($"| syscall | {string.Join(" | ", modes)} |");
                text.AppendLine($"|---|{string.Concat(modes.Select(_ => "---:|"))}");
                // Calls rarer than one in a hundred requests (start-up, timers) in every mode are left out of the rows, not the total.
                foreach (string call in columns.SelectMany(c => c.Keys).Distinct().Where(k => columns.Max(c => c.GetValueOrDefault(k)) >= 0.01)
                    .OrderByDescending(k => columns.Max(c => c.GetValueOrDefault(k))))
                {
                    text.AppendLine($"| {call} | {string.Join(" | ", columns.Select(c => c.GetValueOrDefault(call).ToString("0.00")))} |");
                }

                text.AppendLine($"| total | {string.Join(" | ", columns.Select(c => c.Values.Sum().ToString("0.00")))} |");
                text.AppendLine();
            }
        }

        return text.ToString();
    }

    /// <summary>strace -f -c on both processes while <paramref name="mode"/> makes sequential requests of
    /// <paramref name="size"/> bytes (1 KiB unless told; 1,000 of them, 300 above 16 KiB): calls per request by syscall;
    /// null when strace is not installed.</summary>
    private static async Task<Dictionary<string, double>?> TraceSyscallsAsync(ModeClients clients, string mode, string proto, int size = 1024)
    {
        if (!File.Exists("/usr/bin/strace"))
        {
            Console.WriteLine("syscalls per request: not measured (strace is not installed: apt-get install strace)");
            return null;
        }

        int requests = size > 16 * 1024 ? 300 : 1000;
        byte[] buffer = new byte[Math.Max(16 * 1024, size)];
        HttpClient http = clients[mode, proto];
        for (int i = 0; i < 50; i++)
        {
            await GetAsync(http, $"/data/{size}", size, buffer);
        }

        string output = Path.Combine(Path.GetTempPath(), $"accel-strace-{Guid.NewGuid():N}");
        var psi = new ProcessStartInfo("strace", ["-f", "-c", "-q", "-o", output, "-p", clients.ServerPid.ToString(), "-p", Environment.ProcessId.ToString()]) { RedirectStandardError = true };
        using var strace = Process.Start(psi)!;
        await Task.Delay(1000); // attached to every thread
        for (int i = 0; i < requests; i++)
        {
            await GetAsync(http, $"/data/{size}", size, buffer);
        }

        Command.Run("kill", $"-INT {strace.Id}");
        await strace.WaitForExitAsync();
        var calls = new Dictionary<string, double>();
        foreach (string line in File.ReadLines(output))
        {
            // "12.34  0.123456  1  12345  67 name": % time, seconds, usecs/call, calls, errors (blank when none), syscall.
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 5 && f[^1] != "total" && double.TryParse(f[0], System.Globalization.CultureInfo.InvariantCulture, out _))
            {
                calls[f[^1]] = long.Parse(f[3], System.Globalization.CultureInfo.InvariantCulture) / (double)requests;
            }
        }

        File.Delete(output);
        return calls;
    }

    /// <summary>The kernel times each run of the BPF programs while its statistics are on (BPF_ENABLE_STATS): the
    /// sk_msg program's own cost per run under accelerated load (a run per window of a connection's sends, the library's
    /// transports having windows) and per request, in a pass of its own (timing adds two clock
    /// reads per run), and after it what that timing costs by itself (<see cref="ProgramFloor"/>).</summary>
    private static async Task<ProgramCost> ProgramCostAsync(ModeClients clients, AccelerationEngine engine, MinimalRedirect floor)
    {
        byte[] buffer = new byte[16 * 1024];
        using IDisposable? stats = engine.EnableProgramStatistics();
        const int Streams = 16, RequestsPerStream = 500;
        string[] protocols = ["h1", "h2c"];
        async Task LoadAsync(string mode)
        {
            foreach (string proto in protocols)
            {
                await Task.WhenAll(Enumerable.Range(0, Streams).Select(async _ =>
                {
                    for (int i = 0; i < RequestsPerStream; i++)
                    {
                        await GetAsync(clients[mode, proto], "/data/1024", 1024, buffer);
                    }
                }));
            }
        }

        var before = engine.ReadProgramStatistics();
        await LoadAsync("accel");
        var after = engine.ReadProgramStatistics();
        // The same load through the one-lookup redirect: what any redirecting program costs under it.
        var floorBefore = floor.ProgramStatistics();
        await LoadAsync("floor");
        var floorAfter = floor.ProgramStatistics();
        long runs = (long)(after.Message.Runs - before.Message.Runs), sockops = (long)(after.SockOps.Runs - before.SockOps.Runs);
        // Per run: both programs' verdicts cover 64 KiB of a connection's sends, so they run far less often than messages go.
        ulong redirectRuns = floorAfter.RunCount - floorBefore.RunCount;
        double redirectLoadNs = (floorAfter.RunTimeNs - floorBefore.RunTimeNs) / (double)Math.Max(1UL, redirectRuns);
        var (rawNs, _) = RawSocketBenchmarks.ProgramCost(engine, 20_000);
        var (floorNs, redirectNs) = ProgramFloor.Measure(engine, 20_000);
        return new ProgramCost((after.Message.Ns - before.Message.Ns) / (double)Math.Max(1, runs), runs, protocols.Length * Streams * RequestsPerStream,
            (after.SockOps.Ns - before.SockOps.Ns) / (double)Math.Max(1, sockops), sockops, rawNs, floorNs, redirectNs, redirectLoadNs, (long)redirectRuns);
    }
}

/// <summary>The programs' cost per run under accelerated HTTP load (<paramref name="Runs"/> runs of the sk_msg program for
/// <paramref name="Requests"/> requests); then, in raw 64 B round trips, the sk_msg
/// program's (<paramref name="RawMessageNs"/>), an sk_msg program's that returns at once (<paramref name="FloorNs"/>:
/// the part of each figure that is the kernel's timing) and <see cref="MinimalRedirect"/>'s
/// (<paramref name="RedirectFloorNs"/>: the least a redirecting program costs, run for every send), and per run of the
/// measured ceiling's, whose verdict covers 64 KiB of sends, under the same HTTP load (<paramref name="RedirectUnderLoadNs"/>,
/// over <paramref name="RedirectRunsUnderLoad"/> runs).</summary>
internal sealed record ProgramCost(double RunNs, long Runs, long Requests, double SockOpsNs, long SockOpsRuns, double RawMessageNs, double FloorNs, double RedirectFloorNs, double RedirectUnderLoadNs, long RedirectRunsUnderLoad)
{
    /// <summary>The sk_msg program's time per request of the load (each request is at least two messages: the request and
    /// its response).</summary>
    public double NsPerRequest => RunNs * Runs / Math.Max(1, Requests);
}

/// <summary>What the HTTP benchmark found.</summary>
internal sealed record HttpResults(
    IReadOnlyList<Metric> Metrics,
    IReadOnlyList<Metric> Services,
    double RedirectedShare,
    long PacedWrites,
    long DegradedDirections,
    Dictionary<(string Mode, string Proto), (double Others, double Yields)> SyscallsPerRequest,
    ProgramCost Program,
    Dictionary<string, ProfileRun> Profiles);

/// <summary>One profiled load: the share of each CPU class, the CPU time per request of both processes, and the
/// scheduler events per request (null without perf stat).</summary>
internal sealed record ProfileRun(Dictionary<string, double> Shares, double CpuUsPerRequest, Dictionary<string, double>? EventsPerRequest)
{
    /// <summary>Time per request of one class.</summary>
    public double Us(string cls) => Shares[cls] * CpuUsPerRequest / 100;

    /// <summary>Per class the median time per request over <paramref name="runs"/> (shares recomputed from them), the
    /// median CPU time and the median of each event count.</summary>
    public static ProfileRun Median(IReadOnlyList<ProfileRun> runs)
    {
        static double Mid(IEnumerable<double> values) => MedianInterval.Of(values).Median;

        var us = CpuProfile.Classes.ToDictionary(c => c, c => Mid(runs.Select(r => r.Us(c))));
        double total = us.Values.Sum();
        var events = runs.All(r => r.EventsPerRequest is not null)
            ? CpuProfile.Events.ToDictionary(e => e.Event, e => Mid(runs.Select(r => r.EventsPerRequest![e.Event])))
            : null;
        return new ProfileRun(us.ToDictionary(kv => kv.Key, kv => 100 * kv.Value / total), total, events);
    }
}
