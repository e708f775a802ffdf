using System.Diagnostics;
using System.Text.Json;
using Accel.Testing;

namespace Accel.Tests.Infrastructure;

/// <summary>Starts Accel.StressPeer through a wrapper (capsh, setpriv, nsenter ...) on the test's pins and cgroup.</summary>
public static class Peer
{
    public static Process Start(KernelTestEnvironment environment, string[] wrapper, params string[] args)
    {
        var psi = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        IEnumerable<string> all = wrapper.Skip(1)
            .Concat(wrapper.Length > 0 ? ["dotnet"] : [])
            .Concat([typeof(SequencedStream).Assembly.Location])
            .Concat(args)
            .Concat(["--pin-root", environment.PinRoot, "--cgroup", environment.CgroupPath]);
        foreach (string arg in all)
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }

    /// <summary>The status an engine reports when started under <paramref name="wrapper"/>.</summary>
    public static async Task<AccelerationStatus> StatusAsync(KernelTestEnvironment environment, string[] wrapper, params string[] args)
    {
        using Process p = Start(environment, wrapper, ["status", .. args]);
        string output = await p.StandardOutput.ReadToEndAsync();
        string errors = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"peer exited with {p.ExitCode}: {errors}");
        return JsonSerializer.Deserialize<AccelerationStatus>(output)!;
    }
}
