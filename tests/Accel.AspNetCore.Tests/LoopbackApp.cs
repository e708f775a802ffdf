using System.Net;
using Accel.AspNetCore.Internal;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

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

    /// <summary>Starts the app on one loopback endpoint for HTTP <paramref name="version"/> ("1.1" or "2.0": h2c).</summary>
    public static Task<LoopbackApp> StartAsync(KernelFixture fixture, string version, Action<WebApplication> map) => StartAsync(
        fixture,
        k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = version == "2.0" ? HttpProtocols.Http2 : HttpProtocols.Http1),
        map);

    /// <summary>A handler that connects through the library (the app's own <see cref="Connector"/>).</summary>
    public SocketsHttpHandler Handler() => new() { ConnectCallback = Connector.ConnectAsync };

    /// <summary>A client of the app that connects through the library (<see cref="Handler"/>) and speaks HTTP
    /// <paramref name="version"/> only; <paramref name="configure"/> sets the rest of its handler.</summary>
    public HttpClient Client(string version, Action<SocketsHttpHandler>? configure = null)
    {
        SocketsHttpHandler handler = Handler();
        configure?.Invoke(handler);
        return new HttpClient(handler)
        {
            BaseAddress = Uri,
            DefaultRequestVersion = Version.Parse(version),
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    /// <summary>Asserts that what this process sent since <paramref name="before"/> went through the fast path: nothing through
    /// TCP, and at least <paramref name="atLeast"/> bytes redirected (a caller leaves out the last window of each direction
    /// of a connection still open, which the process counts when the connection ends). Returns the bytes redirected.</summary>
    public long AssertThroughFastPath(AccelerationStatistics before, long atLeast, ITestOutputHelper output)
    {
        AccelerationStatistics after = Engine.GetStatistics();
        long redirected = after.RedirectedBytes - before.RedirectedBytes;
        output.WriteLine($"redirected {redirected} B, through TCP {after.TcpBytes - before.TcpBytes} B, paced writes {after.PacedWrites - before.PacedWrites}");
        Assert.Equal(before.TcpBytes, after.TcpBytes);
        Assert.True(redirected >= atLeast, $"{redirected} B redirected, expected at least {atLeast} B");
        return redirected;
    }

    public ValueTask DisposeAsync() => App.DisposeAsync();
}
