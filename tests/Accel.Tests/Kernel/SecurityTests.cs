using System.Diagnostics;
using Accel.Native.Loading;
using Accel.Testing;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

/// <summary>Nothing joins the host-wide fast path unless it may.</summary>
[Collection(KernelCollection.Name)]
public sealed class SecurityTests(KernelFixture fixture)
{
    private const string Nobody = "65534";

    [KernelFact]
    public async Task An_unprivileged_user_cannot_reach_the_pinned_objects()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled);
        string map = Path.Combine(fixture.Environment.PinRoot, "accel", EmbeddedObjects.Accel.Abi, "accel_sockhash");
        Assert.True(File.Exists(map));
        foreach (string dir in new[] { Path.Combine(fixture.Environment.PinRoot, "accel"), Path.GetDirectoryName(map)! })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(map));
        var (code, text) = await RunAsync("setpriv", "--reuid", Nobody, "--regid", Nobody, "--clear-groups", "cat", map);
        Assert.NotEqual(0, code);
        Assert.Contains("Permission denied", text);
    }

    /// <summary>Even with CAP_BPF and CAP_NET_ADMIN, a process of another user refuses to share pins it does
    /// not own (it could receive the other user's connections' data through them).</summary>
    [KernelFact]
    public async Task A_process_of_another_user_with_the_capabilities_refuses_the_pins()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled);
        AccelerationStatus status = await Peer.StatusAsOtherUserAsync(fixture.Environment,
            ["setpriv", "--reuid", Nobody, "--regid", Nobody, "--clear-groups", "--inh-caps", "+bpf,+net_admin", "--ambient-caps", "+bpf,+net_admin"]);
        Assert.Equal((false, AccelerationDisabledReason.UnsafePinnedObjects), (status.IsEnabled, status.Reason));
        Assert.Contains("another user", status.Message);
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        string output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, output);
    }
}
