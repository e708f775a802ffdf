using System.Diagnostics;
using System.Globalization;
using System.Text;
using Accel.Benchmarks.Paired;
using Accel.Testing;

namespace Accel.Benchmarks.Http;

/// <summary>
/// Notices when the benchmark's HTTP requests stop making progress and records what the two processes and their
/// loopback connections were doing, while it lasts: two runs once waited 100 s for an h2c 256 KiB response (HttpClient's
/// timeout), one of them in the mode without the library, and nothing was recorded of either. Requests count themselves
/// in and out (<see cref="Enter"/>, <see cref="Exit"/>: two atomic operations and a store, the same for every mode);
/// a timer looks every few seconds. After <see cref="StallAfter"/> with requests in flight and none completed, it writes
/// once per stall, to results/stall-*.txt and to standard error: the last request started and every server app's
/// requests in flight (<see cref="RequestCounts"/>: whether the request reached its app), every thread's state, kernel
/// wait channel and kernel stack in both processes, <c>ss</c> of every loopback TCP socket (queues, timers, TCP
/// state, memory, owner), the state of the last request's client (its HTTP/2 streams, unflushed output and window
/// credits) and, in Kestrel, of the last request each app with requests in flight started (its stream, output
/// producer, frame writer and flow control; <see cref="StateDump"/>). After <see cref="AbortAfter"/> it cancels
/// <see cref="AbortToken"/>: the request then fails with a <see cref="StalledRequestException"/>, and the runner
/// repeats that case's round on new connections (<see cref="PairedRunner"/>) instead of the whole run failing at
/// HttpClient's 100 s timeout.
/// </summary>
internal sealed class StallWatch : IDisposable
{
    /// <summary>How long requests may be in flight with none completing: the slowest case (a 1 MiB h2c download, or a
    /// slice of 64 requests) takes milliseconds.</summary>
    public static readonly TimeSpan StallAfter = TimeSpan.FromSeconds(15);

    /// <summary>How long until the requests in flight are canceled, after the stall was recorded.</summary>
    public static readonly TimeSpan AbortAfter = TimeSpan.FromSeconds(30);

    private static CancellationTokenSource s_abort = new();

    private static long s_inFlight;
    private static long s_lastProgress = Stopwatch.GetTimestamp();
    private static HttpClient? s_lastClient;
    private static string? s_lastPath;

    private readonly int[] _pids;
    private readonly Func<string, CancellationToken, Task<string>> _serverGet;
    private readonly Timer _timer;
    private long _reportedFor; // the last-progress timestamp of the stall already written
    private long _abortedFor; // and of the stall whose requests were canceled

    /// <param name="serverPid">The server process.</param>
    /// <param name="serverGet">GETs a path of the server's (<see cref="RequestCounts"/>'s endpoints).</param>
    public StallWatch(int serverPid, Func<string, CancellationToken, Task<string>> serverGet)
    {
        _serverGet = serverGet;
        _pids = [serverPid, Environment.ProcessId];
        _timer = new Timer(_ => Check(), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));
    }

    /// <summary>A request starts (two reference stores, no allocation: the last one started is the one that stalls
    /// in a sequential case, and its client is the one whose state a stall file records).</summary>
    public static void Enter(HttpClient client, string path)
    {
        s_lastClient = client;
        s_lastPath = path;
        Interlocked.Increment(ref s_inFlight);
    }

    public static void Exit()
    {
        Volatile.Write(ref s_lastProgress, Stopwatch.GetTimestamp());
        Interlocked.Decrement(ref s_inFlight);
    }

    /// <summary>Canceled when requests in flight have made no progress for <see cref="AbortAfter"/>; a request passes
    /// the token it read when it started (a cancellable token costs every mode the same registration).</summary>
    public static CancellationToken AbortToken => Volatile.Read(ref s_abort).Token;

    public void Dispose() => _timer.Dispose();

    private void Check()
    {
        long last = Volatile.Read(ref s_lastProgress);
        long inFlight = Interlocked.Read(ref s_inFlight);
        TimeSpan quiet = Stopwatch.GetElapsedTime(last);
        if (inFlight <= 0 || quiet < StallAfter)
        {
            return;
        }

        if (Interlocked.Exchange(ref _reportedFor, last) == last)
        {
            if (quiet >= AbortAfter && Interlocked.Exchange(ref _abortedFor, last) != last)
            {
                Console.Error.WriteLine($"STALL: canceling the {inFlight} request(s) in flight after {quiet.TotalSeconds:0} s without progress");
                Interlocked.Exchange(ref s_abort, new CancellationTokenSource()).Cancel();
            }

            return;
        }

        try
        {
            string text = Snapshot(inFlight, quiet);
            string file = Path.Combine(Repository.Root, "results", $"stall-{DateTime.UtcNow:yyyyMMdd-HHmmss}.txt");
            File.WriteAllText(file, text);
            Console.Error.WriteLine($"STALL: {inFlight} request(s) in flight, none completed for {quiet.TotalSeconds:0} s; threads and sockets written to {file}");
            Console.Error.WriteLine(string.Join(Environment.NewLine, text.Split('\n', 4).Skip(1).Take(2)));
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"STALL: {inFlight} request(s) in flight for {quiet.TotalSeconds:0} s; recording it failed: {e.Message}");
        }
    }

    private string Snapshot(long inFlight, TimeSpan quiet)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:O}: {inFlight} request(s) in flight, none completed for {quiet.TotalSeconds:0.0} s");
        HttpClient? client = Volatile.Read(ref s_lastClient);
        text.AppendLine(CultureInfo.InvariantCulture, $"last request started: {client?.BaseAddress}{Volatile.Read(ref s_lastPath)?.TrimStart('/')}");
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            text.AppendLine(CultureInfo.InvariantCulture, $"server apps, requests in flight/started: {_serverGet(RequestCounts.Path, timeout.Token).GetAwaiter().GetResult()}");
        }
        catch (Exception e)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"server apps' requests: {e.Message}");
        }

        foreach (int pid in _pids)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"\n== process {pid} ({Read($"/proc/{pid}/comm")}): threads (tid, name, state, wait channel, kernel stack)");
            foreach (string task in Directory.EnumerateDirectories($"/proc/{pid}/task").Order(StringComparer.Ordinal))
            {
                string stat = Read(Path.Combine(task, "stat"));
                int close = stat.LastIndexOf(')');
                string state = close > 0 && close + 2 < stat.Length ? stat[(close + 2)..(close + 3)] : "?";
                text.AppendLine(CultureInfo.InvariantCulture, $"{Path.GetFileName(task)} {Read(Path.Combine(task, "comm"))} {state} {Read(Path.Combine(task, "wchan"))}");
                if (state != "R")
                {
                    foreach (string frame in Read(Path.Combine(task, "stack")).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    {
                        text.Append("    ").AppendLine(frame);
                    }
                }
            }
        }

        text.AppendLine("\n== ss -tinoemp, loopback");
        text.AppendLine(Run("ss", "-tinoemp", "dst", "127.0.0.1"));
        if (client is not null)
        {
            // The longest parts last. Whether the waiting request is still in the client (its stream's state, the
            // connection's unflushed output and window credits) or sent and unanswered.
            text.AppendLine("\n== the last request's client: its handler's connections (private fields, by reflection)");
            try
            {
                text.AppendLine(StateDump.Client(client));
            }
            catch (Exception e)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"reading it failed: {e}");
            }
        }

        // Whether the server answered and holds the response in its output, or never answered.
        text.AppendLine("\n== the server's side: the last request of each app with requests in flight, in Kestrel (private fields, by reflection)");
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            text.AppendLine(_serverGet(RequestCounts.StatePath, timeout.Token).GetAwaiter().GetResult());
        }
        catch (Exception e)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"reading it failed: {e.Message}");
        }

        return text.ToString();
    }

    private static string Read(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "-";
        }
    }

    private static string Run(string file, params string[] args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            Task<string> error = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return output + error.Result;
        }
        catch (Exception e)
        {
            return $"{file}: {e.Message}";
        }
    }
}
