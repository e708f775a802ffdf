using System.Net.Http.Json;
using System.Net.Sockets;
using Accel.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// Every IHttpClientFactory client is accelerated whatever its configuration: the connect callback is set after all
/// of the client's own configuration. The server's view of each connection tells: its first send is redirected only
/// when the client's socket is in the fast path too.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class HttpClientFactoryTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task A_client_that_configures_its_own_SocketsHttpHandler_is_accelerated()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var app = new ClientApp(fixture.Environment, services =>
        {
            services.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
            services.AddHttpClient("pooled", c => c.BaseAddress = backend.Http1)
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2), MaxConnectionsPerServer = 8 });
        });

        Assert.Equal("Redirected", await ServerPath.OfAsync(app.Client("pooled")));
        Assert.Empty(app.Warnings);
    }

    [KernelFact]
    public async Task The_synchronous_Send_works_through_the_fast_path()
    {
        // HttpClient.Send writes and reads the connection's stream synchronously (span overloads), a path of the
        // library's stream that the asynchronous API never takes: it overflowed the stack on the first write.
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient client = frontend.Client("h1");
        byte[] body = Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 13 + 5)).ToArray();
        for (int i = 0; i < 3; i++)
        {
            using (var download = client.Send(new HttpRequestMessage(HttpMethod.Get, $"/bytes/{3 << 20}"), HttpCompletionOption.ResponseHeadersRead))
            {
                Assert.Null(VerifySynchronously(download.Content.ReadAsStream(), 3 << 20));
            }

            using var echo = client.Send(new HttpRequestMessage(HttpMethod.Post, "/echo") { Content = new ByteArrayContent(body) });
            using var received = new MemoryStream();
            echo.Content.ReadAsStream().CopyTo(received);
            Assert.Equal(body, received.ToArray());
        }

        // One connection, redirected both ways throughout.
        AccelerationStatistics stats = frontend.Engine.GetStatistics();
        Assert.Equal((1L, 0L), (stats.RegisteredSockets, stats.TcpMessages));
        Assert.True(stats.RedirectedMessages > 0, stats.ToString());
    }

    /// <summary>Pattern.VerifyAsync with synchronous reads: null when the stream holds exactly the test pattern.</summary>
    private static string? VerifySynchronously(Stream stream, long length)
    {
        byte[] buffer = new byte[64 << 10];
        long position = 0;
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            for (int k = 0; k < n; k++)
            {
                if (buffer[k] != Pattern.At(position + k))
                {
                    return $"byte {position + k} differs";
                }
            }

            position += n;
        }

        return position == length ? null : $"{position} bytes, expected {length}";
    }

    [KernelFact]
    public async Task UseSidecarlessAcceleration_accelerates_that_client_only_whatever_the_order_of_configuration()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var app = new ClientApp(fixture.Environment, services =>
        {
            services.AddOptions<SidecarlessAccelerationOptions>().Configure(o => fixture.Environment.Apply(o));
            services.AddHttpClient("chosen", c => c.BaseAddress = backend.Http1)
                .UseSidecarlessAcceleration()
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { MaxConnectionsPerServer = 4 }); // after: still accelerated
            services.AddHttpClient("other", c => c.BaseAddress = backend.Http1);
        });

        Assert.Equal("Redirected", await ServerPath.OfAsync(app.Client("chosen")));
        Assert.Equal("Tcp", await ServerPath.OfAsync(app.Client("other")));
    }

    [KernelFact]
    public async Task A_ConnectCallback_of_the_application_is_left_alone_with_one_warning_naming_the_client()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        int calls = 0;
        using var app = new ClientApp(fixture.Environment, services =>
        {
            services.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
            services.AddHttpClient("custom", c => c.BaseAddress = backend.Http1).ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                ConnectCallback = async (context, ct) =>
                {
                    Interlocked.Increment(ref calls);
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            });
        });

        Assert.Equal("Tcp", await ServerPath.OfAsync(app.Client("custom")));
        Assert.Equal("Tcp", await ServerPath.OfAsync(app.Client("custom")));
        Assert.True(calls >= 1);
        Assert.Single(app.Warnings, w => w.Contains("'custom'", StringComparison.Ordinal) && w.Contains("ConnectCallback", StringComparison.Ordinal));
    }

    [KernelFact]
    public async Task A_primary_handler_that_is_not_a_SocketsHttpHandler_is_warned_about_once_naming_client_and_type()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var app = new ClientApp(fixture.Environment, services =>
        {
            services.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
            services.AddHttpClient("legacy", c => c.BaseAddress = backend.Http1).ConfigurePrimaryHttpMessageHandler(() => new HttpClientHandler());
        });

        Assert.Equal("Tcp", await ServerPath.OfAsync(app.Client("legacy")));
        Assert.Equal("Tcp", await ServerPath.OfAsync(app.Client("legacy")));
        Assert.Single(app.Warnings, w => w.Contains("'legacy'", StringComparison.Ordinal) && w.Contains("System.Net.Http.HttpClientHandler", StringComparison.Ordinal));
    }

    /// <summary>Service discovery, the way Aspire apps name services: the client addresses http://backend, resolved from
    /// configuration to the backend's address; the connect callback sees the resolved address.</summary>
    [KernelFact]
    public async Task A_client_addressing_a_service_by_name_through_service_discovery_is_accelerated()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var app = new ClientApp(fixture.Environment, services =>
        {
            services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Services:backend:http:0"] = $"127.0.0.1:{backend.Http1.Port}",
            }).Build());
            services.AddServiceDiscovery();
            services.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
            services.AddHttpClient("backend", c => c.BaseAddress = new Uri("http://backend")).AddServiceDiscovery();
        });

        Assert.Equal("Redirected", await ServerPath.OfAsync(app.Client("backend")));
        Assert.Empty(app.Warnings);
    }

    /// <summary>A client application's services, with its warnings recorded.</summary>
    private sealed class ClientApp : IDisposable
    {
        private readonly ServiceProvider _services;
        private readonly WarningRecorder _warnings = new();

        public ClientApp(KernelTestEnvironment environment, Action<IServiceCollection> configure)
        {
            var services = new ServiceCollection();
            services.AddLogging(l => l.AddProvider(_warnings));
            services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
            configure(services);
            _services = services.BuildServiceProvider();
        }

        public IReadOnlyCollection<string> Warnings => _warnings.Warnings;

        public HttpClient Client(string name) => _services.GetRequiredService<IHttpClientFactory>().CreateClient(name);

        public void Dispose() => _services.Dispose();
    }
}
