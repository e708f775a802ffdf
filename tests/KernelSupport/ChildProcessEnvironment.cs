using System.Runtime.CompilerServices;

namespace Accel.Testing;

/// <summary>
/// Every process a test (or the benchmark) starts runs without the .NET runtime's diagnostic endpoints. Tests kill
/// processes on purpose (a peer that dies, a server that crashes), and a .NET process that is killed leaves its debugger
/// pipes and diagnostic socket in /tmp, three files a process; tests leave the machine as they found it. Children
/// inherit the variable; this process keeps its own endpoints (it ends normally, and tools such as a hang dump need
/// them).
/// </summary>
internal static class ChildProcessEnvironment
{
    [ModuleInitializer]
    internal static void WithoutDiagnosticEndpoints()
        => Environment.SetEnvironmentVariable("DOTNET_EnableDiagnostics", "0");
}
