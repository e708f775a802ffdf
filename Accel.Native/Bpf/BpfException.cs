using Accel.Native.Interop;

namespace Accel.Native.Bpf;

/// <summary>A call into the kernel's BPF subsystem failed. <see cref="Errno"/> is the kernel's answer.</summary>
public class BpfException : Exception
{
    /// <summary>Creates the exception for <paramref name="operation"/> failing with <paramref name="errno"/>.</summary>
    public BpfException(string operation, int errno, string? hint = null)
        : base(Compose(operation, errno, hint))
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>What was attempted, e.g. "BPF_MAP_CREATE accel_sockhash".</summary>
    public string Operation { get; }

    /// <summary>The positive errno the kernel returned.</summary>
    public int Errno { get; }

    private static string Compose(string operation, int errno, string? hint)
        => $"{operation} failed: {Interop.Errno.Describe(errno)}" + (hint is null ? "" : $". {hint}");
}

/// <summary>The verifier rejected a program. The message ends with the last lines of the verifier log.</summary>
public sealed class BpfProgramLoadException : BpfException
{
    /// <summary>Creates the exception with the verifier log's tail.</summary>
    public BpfProgramLoadException(string program, int errno, string verifierLogTail)
        : base($"BPF_PROG_LOAD {program}", errno, verifierLogTail.Length == 0 ? null : "Verifier log (last lines):\n" + verifierLogTail)
    {
        Program = program;
        VerifierLogTail = verifierLogTail;
    }

    /// <summary>The program's name in the object.</summary>
    public string Program { get; }

    /// <summary>The last lines of the verifier log, with a count of the lines left out.</summary>
    public string VerifierLogTail { get; }
}
