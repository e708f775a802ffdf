using System.Collections.Concurrent;

namespace Accel.Benchmarks.Paired;

/// <summary>What a process has used so far, summed over its threads: CPU time (ns, from each thread's schedstat, not
/// the 10 ms ticks of /proc/PID/stat) and voluntary and involuntary context switches. A thread that ended keeps the
/// figures it had when last read: the .NET thread pool retires threads that have idled for a while, and without
/// that a slice in which one is retired would lose all of that thread's past time and look cheaper than it was.</summary>
internal readonly record struct ProcessCounters(long CpuNs, long Voluntary, long Involuntary)
{
    private static readonly ConcurrentDictionary<(int Pid, string Tid), ProcessCounters> LastSeen = new();

    public static ProcessCounters Read(int pid)
    {
        var live = new HashSet<string>();
        foreach (string task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                long cpu = long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0]);
                long voluntary = 0, involuntary = 0;
                foreach (string line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        voluntary = long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim());
                    }
                    else if (line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        involuntary = long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim());
                    }
                }

                string tid = Path.GetFileName(task);
                LastSeen[(pid, tid)] = new ProcessCounters(cpu, voluntary, involuntary);
                live.Add(tid);
            }
            catch (IOException)
            {
                // the thread ended meanwhile: it keeps what it had when last read
            }
        }

        var total = default(ProcessCounters);
        foreach (var (key, counters) in LastSeen)
        {
            if (key.Pid == pid)
            {
                total += counters;
            }
        }

        return total;
    }

    public static ProcessCounters operator -(ProcessCounters a, ProcessCounters b)
        => new(a.CpuNs - b.CpuNs, a.Voluntary - b.Voluntary, a.Involuntary - b.Involuntary);

    public static ProcessCounters operator +(ProcessCounters a, ProcessCounters b)
        => new(a.CpuNs + b.CpuNs, a.Voluntary + b.Voluntary, a.Involuntary + b.Involuntary);
}
