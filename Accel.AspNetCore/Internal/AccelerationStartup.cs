using Microsoft.Extensions.Hosting;

namespace Accel.AspNetCore.Internal;

/// <summary>Starts the engine (and its one log line) in <see cref="StartingAsync"/>, which the host runs
/// before any hosted service's StartAsync, Kestrel's included.</summary>
internal sealed class AccelerationStartup(AccelerationEngineProvider engine, AccelerationMetrics metrics, AcceleratedConnector connector) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        _ = engine.Engine;
        metrics.Register();
        SidecarlessAcceleration.Use(connector);
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        SidecarlessAcceleration.Forget(connector);
        return Task.CompletedTask;
    }
}
