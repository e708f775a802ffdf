namespace Accel.Testing;

/// <summary>A test on the real kernel: skipped with the reason where BPF cannot run, unless
/// ACCEL_REQUIRE_BPF=1, where it runs (and fails) instead.</summary>
public sealed class KernelFactAttribute : FactAttribute
{
    public KernelFactAttribute()
    {
        string? reason = KernelTestEnvironment.UnavailableReason();
        if (reason is not null && Environment.GetEnvironmentVariable("ACCEL_REQUIRE_BPF") != "1")
        {
            Skip = $"Needs the real kernel's BPF: {reason}. Set ACCEL_REQUIRE_BPF=1 to fail instead of skipping.";
        }
    }
}

/// <summary>A parameterised test on the real kernel, skipped or failing like <see cref="KernelFactAttribute"/>.</summary>
public sealed class KernelTheoryAttribute : TheoryAttribute
{
    public KernelTheoryAttribute()
    {
        Skip = new KernelFactAttribute().Skip;
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
