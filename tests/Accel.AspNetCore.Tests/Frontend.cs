using Accel.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Accel.AspNetCore.Tests;

/// <summary>The calling side: IHttpClientFactory clients ("h1", and "h2c" with prior knowledge) from a
/// container with the library, as a frontend service has them.</summary>
public sealed class Frontend : IDisposable
{
    private readonly ServiceProvider _services;

    public Frontend(KernelTestEnvironment environment, bool enabled, Backend backend)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
        services.AddSidecarlessAcceleration(o =>
        {
            environment.Apply(o);
            o.Enabled = enabled;
        });
        services.AddHttpClient("h1", c => c.BaseAddress = backend.Http1);
        services.AddHttpClient("h2c", c =>
        {
            c.BaseAddress = backend.Http2;
            c.DefaultRequestVersion = System.Net.HttpVersion.Version20;
            c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        });
        services.AddHttpClient("h2-tls", c =>
        {
            c.BaseAddress = backend.Https;
            c.DefaultRequestVersion = System.Net.HttpVersion.Version20;
            c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }).ConfigurePrimaryHttpMessageHandler((handler, _) =>
            ((SocketsHttpHandler)handler).SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true); // the test's own certificate
        _services = services.BuildServiceProvider();
    }

    /// <summary>The primary handler the factory built for the "h1" client (for a WebSocket over it).</summary>
    public HttpMessageHandler Handler() => _services.GetRequiredService<IHttpMessageHandlerFactory>().CreateHandler("h1");

    public HttpClient Client(string name) => _services.GetRequiredService<IHttpClientFactory>().CreateClient(name);

    /// <summary>A handler of its own (so connections of its own) that connects through the library, as the factory's
    /// clients do.</summary>
    public SocketsHttpHandler NewHandler() => new() { ConnectCallback = _services.GetRequiredService<Internal.AcceleratedConnector>().ConnectAsync };

    public AccelerationEngine Engine => _services.GetRequiredService<Internal.AccelerationEngineProvider>().Engine;

    public void Dispose() => _services.Dispose();
}
