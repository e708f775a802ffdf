using System.Diagnostics;

namespace Accel.Deploy.Tests;

/// <summary>
/// A Docker daemon of the test's own, so that the test leaves the machine as it found it: data, state and
/// socket in a temporary directory, containers under a cgroup parent of its own, and no default bridge,
/// no iptables rules and no change to ip_forward (containers talk over the compose network's bridge; the
/// image build uses the host's network). Dispose stops it and removes all of it.
/// </summary>
internal sealed class PrivateDockerEngine : IDisposable
{
    private const string TrustKey = "/etc/docker/key.json"; // written by dockerd 20.10 at start
    private readonly Process _daemon;
    private readonly string _cgroupParent;
    private readonly bool _hadTrustKey;
    private readonly bool _hadRunDocker;

    private PrivateDockerEngine(string root, string cgroupParent, bool hadTrustKey, bool hadRunDocker)
    {
        Root = root;
        _cgroupParent = cgroupParent;
        _hadTrustKey = hadTrustKey;
        _hadRunDocker = hadRunDocker;
        var start = new ProcessStartInfo("dockerd")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in new[]
        {
            "--data-root", Path.Combine(root, "data"), "--exec-root", Path.Combine(root, "exec"),
            "--pidfile", Path.Combine(root, "dockerd.pid"), "-H", Host, "--cgroup-parent", "/" + cgroupParent,
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
        })
        {
            start.ArgumentList.Add(a);
        }

        _daemon = Process.Start(start)!;
        var log = new StreamWriter(Path.Combine(root, "dockerd.log")) { AutoFlush = true };
        _daemon.OutputDataReceived += (_, e) => Write(log, e.Data);
        _daemon.ErrorDataReceived += (_, e) => Write(log, e.Data);
        _daemon.BeginOutputReadLine();
        _daemon.BeginErrorReadLine();
    }

    /// <summary>The directory that holds everything of this daemon.</summary>
    public string Root { get; }

    public string Host => "unix://" + Path.Combine(Root, "docker.sock");

    /// <summary>What a docker or compose command needs to talk to this daemon.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["DOCKER_HOST"] = Host };

    /// <summary>Why this machine cannot run the test, or null.</summary>
    public static string? UnavailableReason()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "Linux";
        }

        if (!System.Environment.IsPrivilegedProcess)
        {
            return "root (to run a Docker daemon and mount bpffs)";
        }

        string[] missing = [.. new[] { "dockerd", "docker", "docker-compose", "debootstrap", "curl" }.Where(t => !Shell.OnPath(t))];
        return missing.Length == 0 ? null
            : $"{string.Join(", ", missing)} (Debian: apt-get install docker.io docker-compose debootstrap curl)";
    }

    public static PrivateDockerEngine Start()
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        string root = Directory.CreateTempSubdirectory($"accel-dockerd-{id}-").FullName;
        var engine = new PrivateDockerEngine(root, $"accel-deploy-{id}", File.Exists(TrustKey), Directory.Exists("/run/docker"));
        var clock = Stopwatch.StartNew();
        while (Shell.Run("docker", ["info"], engine.Environment.ToDictionary()).ExitCode != 0)
        {
            if (engine._daemon.HasExited || clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                string log = File.ReadAllText(Path.Combine(root, "dockerd.log"));
                engine.Dispose();
                throw new InvalidOperationException($"dockerd did not start:\n{log}");
            }

            Thread.Sleep(250);
        }

        return engine;
    }

    public void Dispose()
    {
        if (!_daemon.HasExited)
        {
            Shell.Run("kill", ["-TERM", _daemon.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            if (!_daemon.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                _daemon.Kill(entireProcessTree: true);
                _daemon.WaitForExit();
            }
        }

        _daemon.Dispose();

        // Whatever the daemon left mounted under its root (deepest first), then the root itself.
        foreach (string mount in File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4])
                     .Where(m => m.StartsWith(Root + "/", StringComparison.Ordinal)).OrderByDescending(m => m.Length))
        {
            Shell.Run("umount", ["-l", mount]);
        }

        Directory.Delete(Root, recursive: true);

        // The cgroup parent in every hierarchy, children first; only empty directories can go.
        foreach (string hierarchy in Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup"))
        {
            string parent = Path.Combine(hierarchy, _cgroupParent);
            if (Directory.Exists(parent))
            {
                foreach (string child in Directory.GetDirectories(parent, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
                {
                    Directory.Delete(child);
                }

                Directory.Delete(parent);
            }
        }

        if (!_hadTrustKey)
        {
            File.Delete(TrustKey);
        }

        if (!_hadRunDocker && Directory.Exists("/run/docker"))
        {
            Directory.Delete("/run/docker", recursive: true);
        }
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is not null)
        {
            lock (log)
            {
                log.WriteLine(line);
            }
        }
    }
}
