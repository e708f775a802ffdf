using System.Diagnostics;
using Accel.Testing;

namespace Accel.Native.Tests;

/// <summary>Skipped with the reason where clang is missing, unless ACCEL_REQUIRE_BPF=1 (CI installs clang).</summary>
public sealed class ClangFactAttribute : FactAttribute
{
    public ClangFactAttribute()
    {
        if (!File.Exists("/usr/bin/clang") && Environment.GetEnvironmentVariable("ACCEL_REQUIRE_BPF") != "1")
        {
            Skip = "clang is not installed (apt-get install clang libbpf-dev); set ACCEL_REQUIRE_BPF=1 to fail instead.";
        }
    }
}

public sealed class ObjectFreshnessTests
{
    /// <summary>The committed objects are what their sources compile to: nobody ships a stale program.</summary>
    [ClangFact]
    public void Committed_BPF_objects_match_their_sources()
    {
        string bpfDir = Path.Combine(Repository.Root, "Accel.Native", "bpf");
        string outDir = Directory.CreateTempSubdirectory("accel-bpf-").FullName;
        try
        {
            var psi = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add(Path.Combine(bpfDir, "build.sh"));
            psi.ArgumentList.Add(outDir);
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"build.sh failed: {err}");

            string[] built = Directory.GetFiles(outDir, "*.bpf.o");
            Assert.NotEmpty(built);
            foreach (string fresh in built)
            {
                string committed = Path.Combine(bpfDir, Path.GetFileName(fresh));
                Assert.True(File.Exists(committed), $"{Path.GetFileName(fresh)} is not committed: run Accel.Native/bpf/build.sh and commit the object.");
                Assert.True(File.ReadAllBytes(committed).AsSpan().SequenceEqual(File.ReadAllBytes(fresh)),
                    $"{committed} differs from what its source compiles to: run Accel.Native/bpf/build.sh and commit the object.");
            }
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }
}
