using Accel.AspNetCore.Internal;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Accel.AspNetCore.Tests;

/// <summary>A Kestrel app with the library in the test process, on the one endpoint <c>kestrel</c> configures, in the
/// fixture's pins and cgroup: for tests that hold or watch what the HttpClient's connections do (the library's own connect
/// callback is <see cref="Connector"/>), where <see cref="Backend"/>'s process of its own would hide it.</summary>
internal sealed class LoopbackApp : IAsyncDisposable
{
    private LoopbackApp(WebApplication app)
    {
        App = app;
        Uri = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        Engine = app.Services.GetRequiredService<AccelerationEngineProvider>().Engine;
        Connector = app.Services.GetRequiredService<AcceleratedConnector>();
    }

    public WebApplication App { get; }

    public Uri Uri { get; }

    public AccelerationEngine Engine { get; }

    public AcceleratedConnector Connector { get; }

    /// <summary>Starts the app with its endpoints mapped by <paramref name="map"/>; fails unless acceleration is on.</summary>
    public static async Task<LoopbackApp> StartAsync(KernelFixture fixture, Action<KestrelServerOptions> kestrel, Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel);
        builder.Services.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
        WebApplication app = builder.Build();
        try
        {
            map(app);
            await app.StartAsync();
            var started = new LoopbackApp(app);
            Assert.True(started.Engine.IsEnabled, started.Engine.Status.Message);
            return started;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    public ValueTask DisposeAsync() => App.DisposeAsync();
}
