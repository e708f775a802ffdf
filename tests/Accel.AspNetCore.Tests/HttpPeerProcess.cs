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

    /// <summary>Waits up to <paramref name="timeout"/> for an example that runs to its end (killed after that), and
    /// returns what it printed, which the test output shows; fails with what it wrote to stderr unless it exited with 0.</summary>
    public static async Task<string> RunToEndAsync(Process example, TimeSpan timeout, Xunit.Abstractions.ITestOutputHelper output)
    {
        Task<string> stdout = example.StandardOutput.ReadToEndAsync();
        Task<string> stderr = example.StandardError.ReadToEndAsync();
        if (!example.WaitForExit(timeout))
        {
            example.Kill(entireProcessTree: true);
            example.WaitForExit();
        }

        string printed = await stdout;
        output.WriteLine(printed);
        Assert.True(example.ExitCode == 0, $"the example exited with {example.ExitCode}: {await stderr}");
        return printed;
    }
}
