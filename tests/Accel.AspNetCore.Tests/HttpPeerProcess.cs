using System.Diagnostics;
using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>Starts Accel.HttpPeer, or another service of the test output (the gRPC example), with the library in a
/// process of its own on the test's pins and cgroup, optionally inside a network namespace (nsenter --net: the test's
/// bpffs and cgroup stay visible).</summary>
public static class HttpPeerProcess
{
    public static Process Start(KernelTestEnvironment environment, string? netns, string role, params string[] args)
        => StartService(environment, netns, "Accel.HttpPeer.dll", [role, .. args]);

    public static Process StartService(KernelTestEnvironment environment, string? netns, string dll, params string[] args)
    {
        var psi = new ProcessStartInfo(netns is null ? "dotnet" : "nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        IEnumerable<string> command = new[] { Path.Combine(AppContext.BaseDirectory, dll) }.Concat(args).Concat(
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
