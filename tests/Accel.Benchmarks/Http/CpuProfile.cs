using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Accel.Benchmarks.Http;

/// <summary>
/// Where the CPU time of both processes goes under the same load with and without acceleration: perf samples both
/// processes (cpu-clock; this VM has no hardware counters) and each sample's symbol is put in one class: user
/// space, scheduler and wakeups, TCP/IP stack, sockmap and BPF, syscall entry and VFS, other kernel. The TCP/IP
/// share of the run without the library is what a redirect can remove at most: the ceiling.
/// </summary>
internal static partial class CpuProfile
{
    public static readonly string[] Classes = ["user space", "scheduler, wakeups", "TCP/IP stack", "sockmap + BPF", "syscall entry, VFS, epoll", "VM interrupt enable (pvm_*)", "other kernel"];

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
            var record = Process.Start(new ProcessStartInfo("perf", ["record", "-p", string.Join(',', pids), "-e", "cpu-clock", "-F", "1999", "-o", data, "--", "sleep", duration.TotalSeconds.ToString(CultureInfo.InvariantCulture)])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
            await load();
            await record.WaitForExitAsync();
            var report = Process.Start(new ProcessStartInfo("perf", ["report", "-i", data, "--stdio", "--no-children", "--sort", "sym", "--percent-limit", "0"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string text = await report.StandardOutput.ReadToEndAsync();
            await report.WaitForExitAsync();
            var shares = Classes.ToDictionary(c => c, _ => 0.0);
            foreach (Match m in Line().Matches(text))
            {
                double percent = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                shares[Classify(m.Groups[2].Value == "k", m.Groups[3].Value)] += percent;
            }

            return shares;
        }
        finally
        {
            File.Delete(data);
        }
    }

    private static string Classify(bool kernel, string symbol)
    {
        if (!kernel)
        {
            return "user space";
        }

        if (Regex.IsMatch(symbol, "^(sk_msg|sk_psock|tcp_bpf|bpf_|__bpf|sock_hash|sock_map|__sock_map|sk_storage|bpf_sk_storage|__cgroup_bpf|sk_msg_)") || symbol.StartsWith("bpf_prog_", StringComparison.Ordinal))
        {
            return "sockmap + BPF";
        }

        if (Regex.IsMatch(symbol, "^(tcp_|__tcp|ip_|__ip|ipv6_|ip6_|__ip6|inet_|inet6_|__inet|skb_|__skb|kfree_skb|consume_skb|alloc_skb|__alloc_skb|net_rx|__netif|netif_|napi_|__napi|process_backlog|loopback_xmit|dev_hard_start|__dev_queue|dev_queue|validate_xmit|nf_|ipt_|sk_stream|sk_reset_timer|__sk_mem|sk_mem|lock_sock|release_sock|__release_sock|sk_wait|sock_def|sk_filter|__sk_dst|dst_|raw_local_deliver|__copy_skb|csum_|veth_|__kfree_skb|sk_page_frag|skb_page_frag|__build_skb|build_skb|napi_alloc)"))
        {
            return "TCP/IP stack";
        }

        // This VM's paravirtual interrupt enabling (pvm_irq_enable) is charged wherever the kernel re-enables
        // interrupts; it is a cost of the VM, not of the scheduler, and gets a class of its own.
        if (symbol.StartsWith("pvm_", StringComparison.Ordinal))
        {
            return "VM interrupt enable (pvm_*)";
        }

        if (Regex.IsMatch(symbol, "(schedule|__schedule|sched_|_sched|pick_next|pick_task|enqueue_|dequeue_|try_to_wake_up|ttwu|wake_up|__wake_up|autoremove_wake|finish_task_switch|switch_mm|__switch_to|update_curr|update_load|select_task_rq|check_preempt|resched|set_next_entity|put_prev|idle|cpuidle|do_idle|native_safe_halt|default_idle|futex|hrtimer|load_balance|newidle)"))
        {
            return "scheduler, wakeups";
        }

        if (Regex.IsMatch(symbol, "^(entry_|do_syscall|syscall_|__x64_sys|__sys_|sys_|ksys_|vfs_|fdget|__fdget|fput|__fput|sock_sendmsg|sock_recvmsg|____sys|__sock_sendmsg|sock_read_iter|sock_write_iter|ep_|__ep|do_epoll|epoll|rw_verify|security_|apparmor|import_iovec|copy_msghdr|__import_iovec|_copy_|copy_user|__check_object|rep_movs|exit_to_user|syscall_exit|irqentry)"))
        {
            return "syscall entry, VFS, epoll";
        }

        return "other kernel";
    }

    // "    12.34%  [k] tcp_sendmsg_locked" or "     1.00%  [.] SomeManagedFrame"
    [GeneratedRegex(@"^\s+([0-9.]+)%\s+\[(.)\]\s+(\S+)", RegexOptions.Multiline)]
    private static partial Regex Line();
}
