using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Accel.AspNetCore;

/// <summary>
/// Options of <c>services.AddSidecarlessAcceleration()</c>, bound
/// from the configuration section <c>SidecarlessAcceleration</c> (which wins over the code delegate) and
/// validated when the host starts.
/// </summary>
public sealed class SidecarlessAccelerationOptions : AccelerationEngineOptions
{
    /// <summary>The configuration section the options are bound from.</summary>
    public const string SectionName = "SidecarlessAcceleration";

    /// <summary>The health status reported while acceleration is off (turned off, or not possible here).
    /// Plain TCP still serves every request, so the default is <see cref="HealthStatus.Degraded"/>;
    /// <see cref="HealthStatus.Unhealthy"/> takes a pod that must be accelerated out of rotation.</summary>
    public HealthStatus DisabledHealthStatus { get; set; } = HealthStatus.Degraded;

    /// <summary>
    /// The size of the blocks of Kestrel's memory pool while acceleration is on. Kestrel's socket transport reads a
    /// connection into one block at a time and writes from blocks, so this is the most one read takes. Kestrel's own
    /// blocks are 4 KiB; larger ones make big request bodies (uploads) several times faster over the fast path and
    /// large responses faster too, at the cost of memory: each connection in the middle of a read or a write holds a
    /// block for it (an idle one holds none, unless Kestrel's <c>WaitForDataBeforeAllocatingBuffer</c> is off), and
    /// each pool keeps up to 16 MiB of free blocks, giving back those that go unused for five minutes. The setting
    /// covers every endpoint Kestrel's socket transport serves, accelerated or not. 0 keeps Kestrel's own pool. It takes
    /// effect when Kestrel is set up before <c>AddSidecarlessAcceleration</c> is called, as
    /// <c>WebApplication.CreateBuilder</c> does; otherwise Kestrel keeps its own pool and a warning says so at start.
    /// Between 4096 (4 KiB) and 1048576 (1 MiB), or 0. Default: 65536 (64 KiB).
    /// </summary>
    public int KestrelBlockBytes { get; set; } = 64 << 10;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (KestrelBlockBytes != 0 && KestrelBlockBytes is < 4 << 10 or > 1 << 20)
        {
            throw new ArgumentOutOfRangeException(nameof(KestrelBlockBytes), KestrelBlockBytes,
                "KestrelBlockBytes must be 0 (Kestrel's own memory pool) or between 4096 (4 KiB) and 1048576 (1 MiB).");
        }
    }
}
