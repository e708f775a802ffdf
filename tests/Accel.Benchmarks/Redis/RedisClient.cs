using System.Diagnostics;
using System.Net;
using StackExchange.Redis;

namespace Accel.Benchmarks.Redis;

/// <summary>
/// The client process of the Redis-protocol case: StackExchange.Redis, as a service would use it, in a process of its
/// own that is in process scope (accelerated) or has no library at all. Reads commands from stdin, one line each:
/// <c>seq N</c> times N sequential GETs of a 1 KiB value and prints their median in microseconds; <c>par N</c> runs N
/// GETs with 64 in flight and prints the seconds they took.
/// </summary>
internal static class RedisClient
{
    public static async Task<int> RunAsync(string pinRoot, string cgroup, bool scoped, int port)
    {
        using AccelerationEngine? engine = scoped
            ? AccelerationEngine.Start(new AccelerationEngineOptions { PinRoot = pinRoot, CgroupPath = cgroup, MountBpffsIfMissing = false, Scope = AccelerationScope.Process })
            : null;
        if (engine is { IsEnabled: false } || engine?.Status.Message.Contains("process scope unavailable", StringComparison.Ordinal) == true)
        {
            Console.Error.WriteLine($"no process scope: {engine.Status.Message}");
            return 2;
        }

        using var redis = await ConnectionMultiplexer.ConnectAsync(new ConfigurationOptions { EndPoints = { { IPAddress.Loopback, port } }, ConnectTimeout = 10_000 });
        IDatabase db = redis.GetDatabase();
        await db.StringSetAsync("key", new byte[1024]);
        Console.WriteLine("READY");
        string? line;
        while ((line = Console.ReadLine()) is not null)
        {
            string[] words = line.Split(' ');
            int n = int.Parse(words[1]);
            if (words[0] == "seq")
            {
                double[] us = new double[n];
                for (int i = 0; i < n; i++)
                {
                    long start = Stopwatch.GetTimestamp();
                    await db.StringGetAsync("key");
                    us[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                }

                Array.Sort(us);
                Console.WriteLine(us[n / 2].ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                using var gate = new SemaphoreSlim(64);
                long start = Stopwatch.GetTimestamp();
                await Task.WhenAll(Enumerable.Range(0, n).Select(async _ =>
                {
                    await gate.WaitAsync();
                    try
                    {
                        await db.StringGetAsync("key");
                    }
                    finally
                    {
                        gate.Release();
                    }
                }));
                Console.WriteLine(Stopwatch.GetElapsedTime(start).TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return 0;
    }
}
