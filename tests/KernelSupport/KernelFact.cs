namespace Accel.Testing;

/// <summary>A test on the real kernel: skipped with the reason where BPF cannot run, unless
/// ACCEL_REQUIRE_BPF=1, where it runs (and fails) instead.</summary>
public sealed class KernelFactAttribute : FactAttribute
{
    private string? _tools;

    public KernelFactAttribute()
    {
        string? reason = KernelTestEnvironment.UnavailableReason();
        if (reason is not null && !Required)
        {
            Skip = $"Needs the real kernel's BPF: {reason}. Set ACCEL_REQUIRE_BPF=1 to fail instead of skipping.";
        }
    }

    /// <summary>Programs the test runs, as "program:Debian package" pairs separated by spaces: a missing one skips
    /// the test with the package to install (bash tests/run.sh installs them), unless ACCEL_REQUIRE_BPF=1.</summary>
    public string? Tools
    {
        get => _tools;
        set
        {
            _tools = value;
            string[] missing = (value ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Where(t => !OnPath(t.Split(':')[0])).ToArray();
            if (missing.Length > 0 && Skip is null && !Required)
            {
                Skip = $"Needs {string.Join(", ", missing.Select(t => t.Split(':')[0]))}: apt-get install {string.Join(' ', missing.Select(t => t.Split(':')[^1]))} (bash tests/run.sh installs them).";
            }
        }
    }

    private static bool Required => Environment.GetEnvironmentVariable("ACCEL_REQUIRE_BPF") == "1";

    private static bool OnPath(string program)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, program)));
}

/// <summary>A parameterised test on the real kernel, skipped or failing like <see cref="KernelFactAttribute"/>.</summary>
public sealed class KernelTheoryAttribute : TheoryAttribute
{
    private string? _tools;

    public KernelTheoryAttribute()
    {
        Skip = new KernelFactAttribute().Skip;
    }

    /// <summary>As <see cref="KernelFactAttribute.Tools"/>.</summary>
    public string? Tools
    {
        get => _tools;
        set
        {
            _tools = value;
            Skip = new KernelFactAttribute { Tools = value }.Skip;
        }
    }
}

/// <summary>One environment (bpffs mount, cgroup) for all kernel tests: the process can be in one cgroup only.</summary>
public sealed class KernelFixture : IDisposable
{
    private readonly Lazy<KernelTestEnvironment> _environment = new(() => new KernelTestEnvironment());

    public KernelTestEnvironment Environment => _environment.Value;

    public void Dispose()
    {
        if (_environment.IsValueCreated)
        {
            _environment.Value.Dispose();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class KernelCollection : ICollectionFixture<KernelFixture>
{
    public const string Name = "kernel";
}
