using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Accel.AspNetCore.Internal;

/// <summary>Healthy when accelerating; <see cref="SidecarlessAccelerationOptions.DisabledHealthStatus"/>
/// otherwise, with the reason. Its data carries the process-wide bypass counts.</summary>
internal sealed class AccelerationHealthCheck(AccelerationEngineProvider engine, IOptions<SidecarlessAccelerationOptions> options) : IHealthCheck
{
    public const string Name = "sidecarless-acceleration";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        AccelerationEngine accel = engine.Engine;
        AccelerationStatistics s = accel.GetStatistics();
        var data = new Dictionary<string, object>
        {
            ["enabled"] = accel.IsEnabled,
            ["reason"] = accel.IsEnabled ? null! : accel.Status.Message,
            ["reasonCode"] = accel.Status.Reason.ToString(),
            ["registeredSockets"] = s.RegisteredSockets,
            ["refusedSockets"] = s.RefusedSockets,
            ["skippedRemotePeers"] = s.SkippedRemotePeers,
            ["skippedPlainPeers"] = s.SkippedPlainPeers,
            ["leftPlainPeers"] = s.LeftPlainPeers,
            ["redirectedMessages"] = s.RedirectedMessages,
            ["redirectedBytes"] = s.RedirectedBytes,
            ["tcpMessages"] = s.TcpMessages,
            ["tcpBytes"] = s.TcpBytes,
            ["degradedDirections"] = s.DegradedDirections,
            ["pacedWrites"] = s.PacedWrites,
            ["trackedSockets"] = s.TrackedSockets,
            ["trackedReports"] = s.TrackedReports,
        };
        return Task.FromResult(accel.IsEnabled
            ? HealthCheckResult.Healthy(accel.Status.Message, data)
            : new HealthCheckResult(options.Value.DisabledHealthStatus, accel.Status.Message, data: data));
    }
}
