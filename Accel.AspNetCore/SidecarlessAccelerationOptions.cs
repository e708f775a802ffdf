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
}
