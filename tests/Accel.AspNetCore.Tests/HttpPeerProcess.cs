using System.Diagnostics;
using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>Starts Accel.HttpPeer (a service with the library in a process of its own) on the test's pins and cgroup,
/// optionally inside a network namespace (nsenter --net: the test's bpffs and cgroup stay visible).</summary>
public static class HttpPeerProcess
{
    public static Process Start(KernelTestEnvironment environment, string? netns, string role, params string[] args)
    {
        var psi = new ProcessStartInfo(netns is null ? "dotnet" : "nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        IEnumerable<string> command = new[] { Path.Combine(AppContext.BaseDirectory, "Accel.HttpPeer.dll"), role }.Concat(args).Concat(
        [
            "--SidecarlessAcceleration:PinRoot", environment.PinRoot,
            "--SidecarlessAcceleration:CgroupPath", environment.CgroupPath,
            "--SidecarlessAcceleration:MountBpffsIfMissing", "false",
        ]);
        if (netns is not null)
        {
            command = new[] { $"--net=/run/netns/{netns}", "dotnet" }.Concat(command);
        }

        foreach (string arg in command)
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }
}
