using System.Diagnostics;
using Accel.Testing;

namespace Accel.Tests.Infrastructure;

/// <summary>Stress peers started inside a <see cref="NamespacePair"/> namespace.</summary>
public static class NamespacePeers
{
    /// <summary>Starts the stress peer in namespace <paramref name="ns"/> (network namespace only: the mounts,
    /// and with them the test's bpffs and cgroup, stay visible).</summary>
    public static Process Start(string ns, KernelTestEnvironment environment, params string[] args)
        => Launch(ns, [], [.. args, "--pin-root", environment.PinRoot, "--cgroup", environment.CgroupPath], new Dictionary<string, string>());

    /// <summary>Starts the stress peer as a container runs: in network namespace <paramref name="ns"/>, moved
    /// into the cgroup <paramref name="cgroup"/>, with cgroup and mount namespaces of its own in which cgroup2 is
    /// mounted afresh (so it sees its own cgroup as the root, "0::/"), and left to find its cgroup itself.</summary>
    public static Process StartInContainer(string ns, KernelTestEnvironment environment, string cgroup, params string[] args)
    {
        const string enter = """
            echo $$ > "$ACCEL_CONTAINER_CGROUP/cgroup.procs" &&
            exec unshare --cgroup --mount --propagation private sh -c 'umount "$ACCEL_CGROUP2_MOUNT" && mount -t cgroup2 cgroup2 "$ACCEL_CGROUP2_MOUNT" && exec "$@"' sh "$@"
            """;
        return Launch(ns, ["sh", "-c", enter, "sh"], [.. args, "--pin-root", environment.PinRoot], new Dictionary<string, string>
        {
            ["ACCEL_CONTAINER_CGROUP"] = cgroup,
            ["ACCEL_CGROUP2_MOUNT"] = KernelTestEnvironment.Cgroup2MountPoint()!,
        });
    }

    /// <summary>nsenter --net into <paramref name="ns"/>, then <paramref name="wrapper"/>, then the peer with
    /// <paramref name="args"/>.</summary>
    private static Process Launch(string ns, string[] wrapper, string[] args, Dictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach ((string name, string value) in environment)
        {
            psi.Environment[name] = value;
        }

        foreach (string arg in new[] { $"--net=/run/netns/{ns}" }.Concat(wrapper).Concat(["dotnet", typeof(SequencedStream).Assembly.Location]).Concat(args))
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }
}
