using System.Diagnostics;

namespace Accel.Testing;

/// <summary>Runs a system command that the test environment needs (mount, ip ...), failing with its stderr.</summary>
public static class Command
{
    public static void Run(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {args} failed ({p.ExitCode}): {err}");
        }
    }
}
