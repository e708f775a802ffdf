using Accel.Testing;

namespace Accel.Deploy.Tests;

/// <summary>
/// examples/deploy as a reader runs it: the Dockerfile builds the image, Docker Compose starts the two demo
/// services in their own containers and network namespaces on one host, and smoke-test.sh checks that the
/// frontend's calls to the backend were redirected, from the frontend's health data and the host-wide view
/// inside the backend container.
/// </summary>
public sealed class ComposeDeploymentTests(ITestOutputHelper output)
{
    [DeployFact]
    public void Two_containers_on_one_host_share_the_fast_path()
    {
        Assert.Null(PrivateDockerEngine.UnavailableReason());
        string repository = Repository.Root;
        string deploy = Path.Combine(repository, "examples", "deploy");

        using PrivateDockerEngine engine = PrivateDockerEngine.Start();
        string bpffs = Path.Combine(engine.Root, "bpffs");
        Directory.CreateDirectory(bpffs);
        Shell.Check("mount", ["-t", "bpf", "bpf", bpffs]);
        try
        {
            var environment = new Dictionary<string, string>(engine.Environment)
            {
                ["ACCEL_BPFFS"] = bpffs,
                ["ACCEL_FRONTEND_PORT"] = LoopbackPort.Free().ToString(System.Globalization.CultureInfo.InvariantCulture),
            };

            // This machine has no registry access: build stand-ins for the .NET images when they cannot be pulled.
            string baseImage = "mcr.microsoft.com/dotnet/aspnet:10.0";
            if (Shell.Run("docker", ["pull", baseImage], environment, TimeSpan.FromMinutes(5)).ExitCode != 0)
            {
                output.WriteLine("mcr.microsoft.com cannot be reached: building stand-in .NET images (local-dotnet-images.sh).");
                Shell.Check(Path.Combine(deploy, "local-dotnet-images.sh"), [], environment, TimeSpan.FromMinutes(10));
                environment["DOTNET_IMAGES"] = "accel-local/dotnet";
                baseImage = "accel-local/dotnet/aspnet:10.0";
            }

            var files = new List<string> { Path.Combine(deploy, "compose.yaml") };
            (int code, string refused) = Shell.Run("docker", ["create", "--cap-add", "BPF", baseImage, "true"], environment);
            if (code == 0)
            {
                Shell.Check("docker", ["rm", refused.Trim()], environment);
            }
            else if (refused.Contains("unknown capability", StringComparison.Ordinal))
            {
                // Docker 20.10 as Debian 12 packages it; the README says so and what to use instead.
                output.WriteLine("This Docker engine does not know CAP_BPF: the compose file runs with CAP_SYS_ADMIN in its place.");
                string variant = Path.Combine(engine.Root, "compose.yaml");
                File.WriteAllText(variant, File.ReadAllText(files[0]).Replace("cap_add: [BPF, NET_ADMIN]", "cap_add: [SYS_ADMIN, NET_ADMIN]", StringComparison.Ordinal));
                files[0] = variant;
            }

            if (IsCgroupV1Host())
            {
                output.WriteLine("This host mounts cgroup v1 (cgroup2 only at /sys/fs/cgroup/unified): adding compose.cgroup-v1.yaml.");
                files.Add(Path.Combine(deploy, "compose.cgroup-v1.yaml"));
            }

            (int exit, string text) = Shell.Run(Path.Combine(deploy, "smoke-test.sh"), files, environment, TimeSpan.FromMinutes(10));
            output.WriteLine(text);
            Assert.True(exit == 0, text);
            Assert.Contains("smoke test passed", text, StringComparison.Ordinal);
        }
        finally
        {
            Shell.Run("umount", [bpffs]);
        }
    }

    private static bool IsCgroupV1Host()
    {
        var cgroup2 = File.ReadLines("/proc/self/mountinfo")
            .Where(l => l.Contains(" - cgroup2 ", StringComparison.Ordinal))
            .Select(l => l.Split(' ')[4])
            .ToHashSet();
        return !cgroup2.Contains("/sys/fs/cgroup") && cgroup2.Contains("/sys/fs/cgroup/unified");
    }
}
