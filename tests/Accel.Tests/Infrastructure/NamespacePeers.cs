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
