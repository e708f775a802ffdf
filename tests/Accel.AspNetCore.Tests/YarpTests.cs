using System.Net;
using System.Net.Http.Json;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;
using Yarp.ReverseProxy.Configuration;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// A YARP gateway between a client and a backend, all three with the library: the client's calls reach the proxy
/// through the fast path (its Kestrel transport), and YARP's forwarded calls reach the backend through it too (the
/// one line: ConfigureHttpClient with <see cref="SidecarlessAcceleration.ConnectCallback"/>).
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class YarpTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelFact]
    public async Task A_YARP_proxy_forwards_through_the_fast_path_on_both_hops()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1AndHttp2));
        builder.Services.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
        builder.Services.AddReverseProxy()
            .LoadFromMemory(
                [new RouteConfig { RouteId = "all", ClusterId = "backend", Match = new RouteMatch { Path = "{**rest}" } }],
                [new ClusterConfig { ClusterId = "backend", Destinations = new Dictionary<string, DestinationConfig> { ["one"] = new() { Address = backend.Http2.ToString() } }, HttpRequest = new() { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact } }])
            .ConfigureHttpClient((_, handler) => handler.ConnectCallback = SidecarlessAcceleration.ConnectCallback); // the one line
        await using WebApplication proxy = builder.Build();
        proxy.MapGet("/proxy/feature", (HttpContext ctx) => Results.Json(new { path = ctx.Features.Get<IAccelerationFeature>()!.Outbound.Path.ToString() }));
        proxy.MapReverseProxy();
        await proxy.StartAsync();
        var proxyUri = new Uri(proxy.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        using HttpClient client = new(frontend.Handler(), disposeHandler: false) { BaseAddress = proxyUri };
        foreach (long size in new long[] { 0, 1000, 100_000, 3_000_000 })
        {
            using var response = await client.GetAsync($"/bytes/{size}", HttpCompletionOption.ResponseHeadersRead);
            Assert.True(response.IsSuccessStatusCode, $"{size}: {(int)response.StatusCode}");
            Assert.Null(await Pattern.VerifyAsync(await response.Content.ReadAsStreamAsync(), size, default));
        }

        // Each hop seen from its server: the backend's side of the proxy's connection, the proxy's side of the client's.
        string backendHop = (await client.GetFromJsonAsync<System.Text.Json.JsonElement>("/feature")).GetProperty("path").GetString()!;
        string clientHop = (await client.GetFromJsonAsync<System.Text.Json.JsonElement>("/proxy/feature")).GetProperty("path").GetString()!;
        HealthReportEntry proxyHealth = (await proxy.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["sidecarless-acceleration"];
        HealthReportEntry backendHealth = await backend.HealthAsync();
        output.WriteLine($"client -> proxy: {clientHop}; proxy -> backend: {backendHop}");
        output.WriteLine($"proxy: {proxyHealth.Data["redirectedBytes"]} B redirected, {proxyHealth.Data["tcpBytes"]} B through TCP; backend: {backendHealth.Data["redirectedBytes"]} B redirected, {backendHealth.Data["tcpBytes"]} B through TCP; client: {frontend.Engine.GetStatistics()}");
        Assert.Equal((nameof(DirectionPath.Redirected), nameof(DirectionPath.Redirected)), (clientHop, backendHop));
        Assert.True((long)backendHealth.Data["redirectedBytes"] > 3_000_000);
        Assert.Equal(0L, backendHealth.Data["tcpBytes"]);
        Assert.True((long)proxyHealth.Data["redirectedBytes"] > 3_000_000); // the responses to the client (and the forwarded requests)
        Assert.Equal(0L, proxyHealth.Data["tcpBytes"]);
        Assert.True(frontend.Engine.GetStatistics().RedirectedBytes > 0);
    }

    /// <summary>The shared callback follows the application that started last, and connects plain TCP once it has
    /// stopped (its engine is then gone), instead of using the disposed engine (which would fail each opt-in, with a
    /// warning).</summary>
    [KernelFact]
    public async Task The_shared_connect_callback_connects_plain_TCP_once_its_application_has_stopped()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true); // started last: its engine serves the callback
        Assert.Equal(nameof(DirectionPath.Redirected), await ServerPathAsync(backend.Http1));

        var warnings = new WarningRecorder();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(warnings);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
        await using (WebApplication other = builder.Build())
        {
            await other.StartAsync();
            Assert.Equal(nameof(DirectionPath.Redirected), await ServerPathAsync(backend.Http1)); // now through the other app's engine
            await other.StopAsync();
        }

        Assert.Equal(nameof(DirectionPath.Tcp), await ServerPathAsync(backend.Http1));
        Assert.Empty(warnings.Warnings);
    }

    /// <summary>The backend's side of a new connection made through the shared callback, after its first response.</summary>
    private static async Task<string> ServerPathAsync(Uri backend)
    {
        using var client = new HttpClient(new SocketsHttpHandler { ConnectCallback = SidecarlessAcceleration.ConnectCallback }) { BaseAddress = backend };
        return await ServerPath.OfAsync(client);
    }
}
