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
        => StartProgram(environment, netns, ["dotnet", Path.Combine(AppContext.BaseDirectory, dll)], args);

    /// <summary>Starts <paramref name="program"/> (a command line: a native executable, or <c>dotnet</c> and an assembly)
    /// with <paramref name="args"/> and the library's options for the test's pins and cgroup.</summary>
    public static Process StartProgram(KernelTestEnvironment environment, string? netns, string[] program, params string[] args)
    {
        var psi = new ProcessStartInfo(netns is null ? program[0] : "nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        IEnumerable<string> command = program[1..].Concat(args).Concat(
        [
            "--SidecarlessAcceleration:PinRoot", environment.PinRoot,
            "--SidecarlessAcceleration:CgroupPath", environment.CgroupPath,
            "--SidecarlessAcceleration:MountBpffsIfMissing", "false",
        ]);
        if (netns is not null)
        {
            command = new[] { $"--net=/run/netns/{netns}", program[0] }.Concat(command);
        }

        foreach (string arg in command)
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }

    /// <summary>Waits for a <c>fetch</c> (its 32 downloads of 0 B to 64 MiB) and checks its result line: every body byte
    /// arrived intact, at least 95% of what the server sent meanwhile was redirected, and no direction left the fast path.
    /// Returns the result line (the server's health data before and after, the client's own at the end).</summary>
    public static async Task<System.Text.Json.JsonDocument> CheckFetchAsync(Process fetch, string description, Xunit.Abstractions.ITestOutputHelper output)
    {
        Task<string> stdout = fetch.StandardOutput.ReadToEndAsync();
        Task<string> stderr = fetch.StandardError.ReadToEndAsync();
        Assert.True(fetch.WaitForExit(TimeSpan.FromMinutes(3)), "the client did not finish in 3 minutes");
        Assert.True(fetch.ExitCode == 0, $"client exited with {fetch.ExitCode}: {await stderr}");
        var result = System.Text.Json.JsonDocument.Parse(await stdout);
        var root = result.RootElement;
        long Delta(string name) => root.GetProperty("after").GetProperty(name).GetInt64() - root.GetProperty("before").GetProperty(name).GetInt64();
        long redirected = Delta("redirectedBytes"), tcp = Delta("tcpBytes");
        double share = redirected / (double)Math.Max(1, redirected + tcp);
        output.WriteLine($"{description}: {root.GetProperty("bytes").GetInt64() >> 20} MiB of bodies; server: {redirected} B redirected, {tcp} B through TCP ({share:P1}), {Delta("pacedWrites")} paced writes, {Delta("degradedDirections")} directions left the fast path");
        Assert.Equal(System.Text.Json.JsonValueKind.Null, root.GetProperty("error").ValueKind);
        Assert.True(share >= 0.95, $"{share:P1} of the server's bytes were redirected");
        Assert.Equal(0, Delta("degradedDirections"));
        return result;
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
