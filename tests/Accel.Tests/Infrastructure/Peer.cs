using System.Diagnostics;
using System.Text.Json;
using Accel.Testing;

namespace Accel.Tests.Infrastructure;

/// <summary>Starts Accel.StressPeer through a wrapper (capsh, setpriv, nsenter ...) on the test's pins and cgroup.</summary>
public static class Peer
{
    public static Process Start(KernelTestEnvironment environment, string[] wrapper, params string[] args)
        => Start(environment, wrapper, typeof(SequencedStream).Assembly.Location, args);

    private static Process Start(KernelTestEnvironment environment, string[] wrapper, string peerDll, string[] args)
    {
        var psi = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        IEnumerable<string> all = wrapper.Skip(1)
            .Concat(wrapper.Length > 0 ? ["dotnet"] : [])
            .Concat([peerDll])
            .Concat(args)
            .Concat(["--pin-root", environment.PinRoot, "--cgroup", environment.CgroupPath]);
        foreach (string arg in all)
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }

    /// <summary>The port a "serve" or "echo" peer listens on: its first line, "PORT n".</summary>
    public static async Task<int> ReadPortAsync(Process peer)
    {
        string? line = await peer.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (line is null || !line.StartsWith("PORT ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"peer said '{line}': {await peer.StandardError.ReadToEndAsync()}");
        }

        return int.Parse(line[5..]);
    }

    /// <summary>What a peer printed when it ended (it must end with exit code 0).</summary>
    public static async Task<StressPeerOutput> ResultAsync(Process peer)
    {
        Task<string> stdout = peer.StandardOutput.ReadToEndAsync();
        Task<string> stderr = peer.StandardError.ReadToEndAsync();
        await peer.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        if (peer.ExitCode != 0)
        {
            throw new InvalidOperationException($"Stress peer exited with {peer.ExitCode}: {await stderr}");
        }

        return JsonSerializer.Deserialize<StressPeerOutput>(await stdout)!;
    }

    /// <summary>The status an engine reports when started under <paramref name="wrapper"/>.</summary>
    public static Task<AccelerationStatus> StatusAsync(KernelTestEnvironment environment, string[] wrapper, params string[] args)
        => StatusAsync(environment, wrapper, typeof(SequencedStream).Assembly.Location, args);

    /// <summary>The status an engine reports when started as another user. The repository may sit in a directory
    /// that user cannot enter (a clone under mktemp -d is 0700), so the peer runs from a world-readable copy of
    /// the test output, removed afterwards.</summary>
    public static async Task<AccelerationStatus> StatusAsOtherUserAsync(KernelTestEnvironment environment, string[] wrapper)
    {
        string staged = Path.Combine(Path.GetTempPath(), $"accel-peer-{Guid.NewGuid():N}");
        var readable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        Directory.CreateDirectory(staged, readable);
        try
        {
            foreach (string file in Directory.GetFiles(AppContext.BaseDirectory))
            {
                File.Copy(file, Path.Combine(staged, Path.GetFileName(file)));
            }

            string dll = Path.Combine(staged, Path.GetFileName(typeof(SequencedStream).Assembly.Location));
            // The other user has no home of its own here; the runtime wants one.
            return await StatusAsync(environment, ["env", "HOME=/tmp", "DOTNET_CLI_HOME=/tmp", .. wrapper], dll, []);
        }
        finally
        {
            Directory.Delete(staged, recursive: true);
        }
    }

    private static async Task<AccelerationStatus> StatusAsync(KernelTestEnvironment environment, string[] wrapper, string peerDll, string[] args)
    {
        using Process p = Start(environment, wrapper, peerDll, ["status", .. args]);
        string output = await p.StandardOutput.ReadToEndAsync();
        string errors = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"peer exited with {p.ExitCode}: {errors}");
        return JsonSerializer.Deserialize<AccelerationStatus>(output)!;
    }
}
