using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Accel.Benchmarks.Http;

/// <summary>
/// Where the CPU time of both processes goes under the same load with and without acceleration: perf samples both
/// processes with their kernel call chains (cpu-clock; this VM has no hardware counters) and each sample goes to
/// one class: user space, scheduler and wakeups, sched_yield, TCP/IP stack, sockmap and BPF, syscall entry and VFS,
/// other kernel.
/// A sample is charged to the first frame, from the leaf up, that belongs to a class: memory copies, allocations,
/// locks and this VM's interrupt enabling (<c>pvm_irq_enable</c>, where a cpu-clock sample lands when interrupts were
/// off while it was due) are charged to whoever called them. Waking a socket's reader (<c>sock_def_readable</c>, the
/// same call on both paths) counts as a wake-up, not as TCP/IP. A sample anywhere inside a sched_yield call is its own
/// class: that is the .NET thread pool's idle workers spinning before they sleep (a switch to another runnable thread
/// included, when there is one), work of the runtime, not of a socket's path, which would otherwise read as the
/// scheduler's. The TCP/IP share of the run without the library is what a redirect can remove at most: the ceiling.
/// </summary>
internal static partial class CpuProfile
{
    public static readonly string[] Classes = ["user space", "scheduler, wakeups", "sched_yield (spinning)", "TCP/IP stack", "sockmap + BPF", "syscall entry, VFS, epoll", "other kernel"];

    /// <summary>Scheduler events and syscalls counted per request in a pass of their own (perf stat on tracepoints):
    /// wake-ups, context switches, the interrupts one CPU sends another to wake or run something there, and the
    /// socket and thread-pool syscalls.</summary>
    public static readonly (string Event, string Title)[] Events =
    [
        ("sched:sched_wakeup", "wake-ups"),
        ("sched:sched_switch", "context switches"),
        ("irq_vectors:reschedule_entry", "reschedule IPIs"),
        ("irq_vectors:call_function_single_entry", "function-call IPIs"),
        // The socket calls and the thread pool's: under load, how many requests one read or write carries (HTTP/2
        // batches frames, and how many depends on timing) and how often the pool's workers park and spin.
        ("syscalls:sys_enter_recvfrom", "recvfrom"),
        ("syscalls:sys_enter_sendto", "sendto"),
        ("syscalls:sys_enter_sendmsg", "sendmsg"),
        ("syscalls:sys_enter_epoll_wait", "epoll_wait"),
        ("syscalls:sys_enter_futex", "futex"),
        ("syscalls:sys_enter_sched_yield", "sched_yield"),
    ];

    /// <summary>How often each of <see cref="Events"/> happened in the tasks of <paramref name="pids"/> while
    /// <paramref name="load"/> ran, or null without perf.</summary>
    public static async Task<Dictionary<string, double>?> CountEventsAsync(int[] pids, Func<Task> load, TimeSpan duration)
    {
        if (!File.Exists("/usr/bin/perf"))
        {
            return null;
        }

        var args = new List<string> { "stat", "-x", ",", "-p", string.Join(',', pids) };
        foreach (var (e, _) in Events)
        {
            args.AddRange(["-e", e]);
        }

        args.AddRange(["--", "sleep", duration.TotalSeconds.ToString(CultureInfo.InvariantCulture)]);
        var stat = Process.Start(new ProcessStartInfo("perf", args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        Task<string> output = stat.StandardError.ReadToEndAsync();
        await load();
        await stat.WaitForExitAsync();
        var counts = new Dictionary<string, double>();
        foreach (string line in (await output).Split('\n'))
        {
            // "12345,,sched:sched_wakeup,5000123456,100.00,,"
            string[] f = line.Split(',');
            if (f.Length > 2 && Events.Any(e => e.Event == f[2]) && double.TryParse(f[0], CultureInfo.InvariantCulture, out double n))
            {
                counts[f[2]] = n;
            }
        }

        return counts.Count == Events.Length ? counts : null;
    }

    /// <summary>Shares of the samples of processes <paramref name="pids"/> (all their threads, in user space and in the
    /// kernel) per class while <paramref name="load"/> runs, or null without perf.</summary>
    public static async Task<Dictionary<string, double>?> MeasureAsync(int[] pids, Func<Task> load, TimeSpan duration)
    {
        if (!File.Exists("/usr/bin/perf"))
        {
            return null;
        }

        string data = Path.Combine(Path.GetTempPath(), $"accel-perf-{Guid.NewGuid():N}.data");
        try
        {
            var record = Process.Start(new ProcessStartInfo("perf", ["record", "-g", "-p", string.Join(',', pids), "-e", "cpu-clock", "-F", "999", "-o", data, "--", "sleep", duration.TotalSeconds.ToString(CultureInfo.InvariantCulture)])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
            await load();
            await record.WaitForExitAsync();
            var script = Process.Start(new ProcessStartInfo("perf", ["script", "-i", data, "-F", "ip,sym,dso"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
            Task<string> warnings = script.StandardError.ReadToEndAsync(); // drained, so that perf never blocks on it
            var counts = Classes.ToDictionary(c => c, _ => 0L);
            var frames = new List<(bool Kernel, string Symbol)>();
            long samples = 0;
            while (await script.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.Length == 0)
                {
                    if (frames.Count > 0)
                    {
                        counts[Classify(frames)]++;
                        samples++;
                        frames.Clear();
                    }

                    continue;
                }

                // "	ffffffff8a1b2c3d tcp_sendmsg_locked+0x12 ([kernel.kallsyms])"
                Match m = Frame().Match(line);
                if (m.Success)
                {
                    frames.Add((m.Groups[2].Value == "[kernel.kallsyms]", m.Groups[1].Value));
                }
            }

            if (frames.Count > 0)
            {
                counts[Classify(frames)]++;
                samples++;
            }

            await script.WaitForExitAsync();
            await warnings;
            return samples == 0 ? null : counts.ToDictionary(kv => kv.Key, kv => 100.0 * kv.Value / samples);
        }
        finally
        {
            // ACCEL_PROFILE_KEEP=<directory> keeps the perf data of each pass there, to read with perf report.
            if (Environment.GetEnvironmentVariable("ACCEL_PROFILE_KEEP") is { Length: > 0 } keep)
            {
                File.Move(data, Path.Combine(keep, $"perf-{DateTime.UtcNow:HHmmss.fff}.data"));
            }
            else
            {
                File.Delete(data);
            }
        }
    }

    /// <summary>The class of one sample, its frames leaf first.</summary>
    private static string Classify(List<(bool Kernel, string Symbol)> frames)
    {
        if (!frames[0].Kernel)
        {
            return "user space";
        }

        if (frames.Any(f => f.Kernel && f.Symbol is "do_sched_yield" or "__x64_sys_sched_yield"))
        {
            return "sched_yield (spinning)";
        }

        foreach (var (kernel, symbol) in frames)
        {
            if (!kernel)
            {
                break;
            }

            if (ClassOf(symbol) is { } found)
            {
                return found;
            }
        }

        return "other kernel";
    }

    private static string? ClassOf(string symbol)
    {
        if (SockmapBpf().IsMatch(symbol))
        {
            return "sockmap + BPF";
        }

        if (Scheduler().IsMatch(symbol))
        {
            return "scheduler, wakeups";
        }

        if (TcpIp().IsMatch(symbol))
        {
            return "TCP/IP stack";
        }

        return SyscallVfs().IsMatch(symbol) ? "syscall entry, VFS, epoll" : null;
    }

    [GeneratedRegex(@"^\s*[0-9a-f]+\s+(\S+?)(?:\+0x[0-9a-f]+)?\s+\((.*)\)\s*$")]
    private static partial Regex Frame();

    [GeneratedRegex("^(sk_msg|sk_psock|tcp_bpf|bpf_|__bpf|sock_hash|sock_map|__sock_map|sk_storage|bpf_sk_storage|__cgroup_bpf|sk_msg_|bpf_prog_)")]
    private static partial Regex SockmapBpf();

    [GeneratedRegex("^(schedule|__schedule|sched_|pick_next|pick_task|enqueue_|dequeue_|try_to_wake_up|ttwu_|wake_up|__wake_up|autoremove_wake|finish_task_switch|switch_mm|__switch_to|update_curr|update_load|select_task_rq|check_preempt|resched|set_next_entity|put_prev|do_idle|cpuidle|default_idle|futex|__futex|hrtimer|load_balance|sched_balance|newidle|schedule_hrtimeout|process_timeout|sock_def_readable|sock_def_write_space)")]
    private static partial Regex Scheduler();

    [GeneratedRegex("^(tcp_|__tcp|ip_|__ip|ipv6_|ip6_|__ip6|inet_|inet6_|__inet|skb_|__skb|kfree_skb|consume_skb|alloc_skb|__alloc_skb|net_rx|__netif|netif_|napi_|__napi|process_backlog|loopback_xmit|dev_hard_start|__dev_queue|dev_queue|validate_xmit|nf_|ipt_|sk_stream|sk_reset_timer|__sk_mem|sk_mem|lock_sock|release_sock|__release_sock|sk_wait|sk_filter|__sk_dst|dst_|raw_local_deliver|__copy_skb|csum_|veth_|__kfree_skb|sk_page_frag|skb_page_frag|__build_skb|build_skb|napi_alloc|handle_softirqs|__do_softirq|do_softirq|net_rx_action)")]
    private static partial Regex TcpIp();

    [GeneratedRegex("^(entry_|do_syscall|syscall_|__x64_sys|__sys_|sys_|ksys_|vfs_|fdget|__fdget|fput|__fput|sock_sendmsg|sock_recvmsg|____sys|__sock_sendmsg|sock_read_iter|sock_write_iter|ep_|__ep|do_epoll|epoll|rw_verify|security_|apparmor|import_iovec|copy_msghdr|__import_iovec|exit_to_user|syscall_exit|irqentry)")]
    private static partial Regex SyscallVfs();
}
