using System.Diagnostics;
using System.Text.Json;
using Accel.Testing;

namespace Accel.Tests.Infrastructure;

/// <summary>Stress peers started inside a <see cref="NamespacePair"/> namespace.</summary>
public static class NamespacePeers
{
    /// <summary>Starts the stress peer in namespace <paramref name="ns"/> (network namespace only: the mounts,
    /// and with them the test's bpffs and cgroup, stay visible).</summary>
    public static Process Start(string ns, KernelTestEnvironment environment, params string[] args)
    {
        var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { $"--net=/run/netns/{ns}", "dotnet", typeof(SequencedStream).Assembly.Location }
            .Concat(args).Concat(["--pin-root", environment.PinRoot, "--cgroup", environment.CgroupPath]))
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }

    /// <summary>Starts the stress peer as a container runs: in network namespace <paramref name="ns"/>, moved
    /// into the cgroup <paramref name="cgroup"/>, with cgroup and mount namespaces of its own in which cgroup2 is
    /// mounted afresh (so it sees its own cgroup as the root, "0::/"), and left to find its cgroup itself.</summary>
    public static Process StartInContainer(string ns, KernelTestEnvironment environment, string cgroup, params string[] args)
    {
        string mountPoint = KernelTestEnvironment.Cgroup2MountPoint()!;
        var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["ACCEL_CONTAINER_CGROUP"] = cgroup;
        psi.Environment["ACCEL_CGROUP2_MOUNT"] = mountPoint;
        const string enter = """
            echo $$ > "$ACCEL_CONTAINER_CGROUP/cgroup.procs" &&
            exec unshare --cgroup --mount --propagation private sh -c 'umount "$ACCEL_CGROUP2_MOUNT" && mount -t cgroup2 cgroup2 "$ACCEL_CGROUP2_MOUNT" && exec "$@"' sh "$@"
            """;
        foreach (string arg in new[] { $"--net=/run/netns/{ns}", "sh", "-c", enter, "sh", "dotnet", typeof(SequencedStream).Assembly.Location }
            .Concat(args).Concat(["--pin-root", environment.PinRoot]))
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }

    public static async Task<StressPeerOutput> ResultAsync(Process peer, string stdoutSoFar = "")
    {
        string output = stdoutSoFar + await peer.StandardOutput.ReadToEndAsync();
        string errors = await peer.StandardError.ReadToEndAsync();
        await peer.WaitForExitAsync();
        if (peer.ExitCode != 0)
        {
            throw new InvalidOperationException($"Stress peer exited with {peer.ExitCode}: {errors}");
        }

        return JsonSerializer.Deserialize<StressPeerOutput>(output)!;
    }

}
