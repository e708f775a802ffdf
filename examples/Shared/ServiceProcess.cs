using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Accel.Examples;

/// <summary>Stops an example's service process the way a container engine stops a service.</summary>
internal static partial class ServiceProcess
{
    private const int SigTerm = 15;

    /// <summary>SIGTERM, so that the service's host shuts down: the library removes the service's record, and the
    /// runtime its diagnostic pipes in /tmp (which a killed process leaves behind). SIGKILL only if it has not ended
    /// within 10 s.</summary>
    public static void Stop(Process process)
    {
        if (process.HasExited)
        {
            return;
        }

        if (Signal(process.Id, SigTerm) != 0 || !process.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            process.Kill(entireProcessTree: true);
        }

        process.WaitForExit();
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Signal(int pid, int signal);
}
