using System.Diagnostics;

namespace Accel.AspNetCore.Tests;

/// <summary>Runs the .NET SDK's command line as a step of a test (pack, new, build, publish), as a user would.</summary>
internal static class DotnetCli
{
    /// <summary>Runs <c>dotnet</c> with <paramref name="args"/> and returns what it printed (standard output, then
    /// standard error); fails with that output unless it exits with 0 within <paramref name="timeout"/>.</summary>
    public static string Run(TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(), stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {string.Join(' ', args)} did not finish in {timeout.TotalMinutes} minutes");
        }

        string printed = stdout.Result + stderr.Result;
        Assert.True(p.ExitCode == 0, $"dotnet {string.Join(' ', args)} failed ({p.ExitCode}):\n{printed}");
        return printed;
    }
}
