using System.Runtime.InteropServices;

namespace Accel.Testing;

/// <summary>
/// What a test on the real kernel needs of its own: a private bpffs mount for pins, a private cgroup v2
/// directory that this process moves into (sock_ops attaches there) and a scratch directory. All three are removed by
/// Dispose, and the process returns to its original cgroup: the machine is left as it was found.
/// </summary>
public sealed class KernelTestEnvironment : IDisposable
{
    private readonly string _originalCgroup;
    private readonly string _mountDir;
    private readonly Lock _gate = new();
    private bool _disposed;

    public KernelTestEnvironment()
    {
        string id = Guid.NewGuid().ToString("N")[..10];
        _mountDir = Path.Combine(Path.GetTempPath(), $"accel-test-{id}");
        Directory.CreateDirectory(_mountDir);
        ScratchPath = Directory.CreateDirectory(_mountDir + "-scratch").FullName;
        PinRoot = _mountDir;
        Command.Run("mount", $"-t bpf bpf {_mountDir}");

        string cg2 = Cgroup2MountPoint() ?? throw new InvalidOperationException("No cgroup2 mount.");
        string relative = File.ReadLines("/proc/self/cgroup").First(l => l.StartsWith("0::", StringComparison.Ordinal))[3..];
        _originalCgroup = relative == "/" ? cg2 : Path.Join(cg2, relative);
        CgroupPath = Path.Combine(cg2, $"accel-test-{id}");
        Directory.CreateDirectory(CgroupPath);
        File.WriteAllText(Path.Combine(CgroupPath, "cgroup.procs"), Environment.ProcessId.ToString());
    }

    /// <summary>A fresh bpffs mount: pins made here touch nothing else on the host.</summary>
    public string PinRoot { get; }

    /// <summary>A plain directory of the environment's own, removed with everything in it by <see cref="Dispose"/>:
    /// for files that must outlive a process the cleanup kills (a server's Unix sockets), which it then cannot remove.</summary>
    public string ScratchPath { get; }

    /// <summary>The test cgroup this process (and every process it starts) runs in.</summary>
    public string CgroupPath { get; }

    public AccelerationEngineOptions Options() => Apply(new AccelerationEngineOptions());

    /// <summary>Points <paramref name="options"/> at this environment's pins and cgroup.</summary>
    public T Apply<T>(T options)
        where T : AccelerationEngineOptions
    {
        options.PinRoot = PinRoot;
        options.CgroupPath = CgroupPath;
        options.MountBpffsIfMissing = false;
        return options;
    }

    /// <summary>Once; a second caller waits until the first is done. A benchmark stopped by a signal runs it from the
    /// signal's handler while its main flow, which the stopped server process ends too, runs it from a <c>using</c>: two
    /// runs at once each undid part of the other (the second umount failed, and its exception ended the process before
    /// the directory was removed), and a handler that returned early let the signal end the process halfway.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Remove();
        }
    }

    private void Remove()
    {
        File.WriteAllText(Path.Combine(_originalCgroup, "cgroup.procs"), Environment.ProcessId.ToString());

        // A peer process a failed test did not stop would keep the cgroup (and, through its descriptors, the
        // bpffs mount) busy: everything left in the test's cgroup is the test's own, so it is killed.
        string kill = Path.Combine(CgroupPath, "cgroup.kill");
        if (File.Exists(kill))
        {
            File.WriteAllText(kill, "1");
        }

        for (int i = 0; i < 50 && Directory.Exists(CgroupPath); i++)
        {
            try
            {
                Directory.Delete(CgroupPath);
            }
            catch (IOException)
            {
                Thread.Sleep(100); // a child process may still be exiting
            }
        }

        Command.Run("umount", $"-l {_mountDir}"); // lazy: a descriptor still closing must not leave the mount behind
        Directory.Delete(_mountDir);
        Directory.Delete(ScratchPath, recursive: true);
    }

    /// <summary>Why tests on the real kernel cannot run here, or null when they can.</summary>
    public static string? UnavailableReason()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "not Linux";
        }

        string? capEff = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        ulong caps = capEff is null ? 0 : Convert.ToUInt64(capEff[7..].Trim(), 16);
        if ((caps & (1UL << 21)) == 0)
        {
            return "the tests need CAP_SYS_ADMIN (root) to mount a private bpffs and create a cgroup";
        }

        return Cgroup2MountPoint() is null ? "no cgroup2 mount" : null;
    }

    public static string? Cgroup2MountPoint()
    {
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            int dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash > 0 && line[(dash + 3)..].StartsWith("cgroup2 ", StringComparison.Ordinal))
            {
                return line[..dash].Split(' ')[4];
            }
        }

        return null;
    }
}
