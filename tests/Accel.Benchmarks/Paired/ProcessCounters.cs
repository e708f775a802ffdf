namespace Accel.Benchmarks.Paired;

/// <summary>What a process has used so far, summed over its threads: CPU time (ns, from each thread's schedstat, not
/// the 10 ms ticks of /proc/PID/stat) and voluntary and involuntary context switches.</summary>
internal readonly record struct ProcessCounters(long CpuNs, long Voluntary, long Involuntary)
{
    public static ProcessCounters Read(int pid)
    {
        long cpu = 0, voluntary = 0, involuntary = 0;
        foreach (string task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                cpu += long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0]);
                foreach (string line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        voluntary += long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim());
                    }
                    else if (line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        involuntary += long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim());
                    }
                }
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }

        return new ProcessCounters(cpu, voluntary, involuntary);
    }

    public static ProcessCounters operator -(ProcessCounters a, ProcessCounters b)
        => new(a.CpuNs - b.CpuNs, a.Voluntary - b.Voluntary, a.Involuntary - b.Involuntary);

    public static ProcessCounters operator +(ProcessCounters a, ProcessCounters b)
        => new(a.CpuNs + b.CpuNs, a.Voluntary + b.Voluntary, a.Involuntary + b.Involuntary);
}
