using System.Net;
using Accel.AspNetCore;
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

namespace Accel.AspNetCore.Tests;

/// <summary>A real Kestrel service with the library: an HTTP/1.1 endpoint, an h2c endpoint, optionally a
/// Unix socket; /bytes/{n} returns the test pattern, /echo streams the request body back.</summary>
public sealed class Backend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private int _activeEchoes;
    private int _activeSingles;

    private Backend(WebApplication app) => _app = app;

    /// <summary>HTTP/1.1 and HTTP/2 over TLS (ALPN), with a throwaway self-signed certificate.</summary>
    public Uri Https { get; private set; } = null!;

    public Uri Http1 { get; private set; } = null!;

    public Uri Http2 { get; private set; } = null!;

    /// <summary>/echo requests being served now.</summary>
    public int ActiveEchoes => Volatile.Read(ref _activeEchoes);

    /// <summary>Responses of /single still being written.</summary>
    public int ActiveSingles => Volatile.Read(ref _activeSingles);

    /// <summary>The connection feature of the last request to /noted/{n}.</summary>
    public IAccelerationFeature? NotedFeature { get; private set; }

    public IServiceProvider Services => _app.Services;

    /// <param name="address">Where it listens: 127.0.0.1 unless given (for example ::1).</param>
    public static async Task<Backend> StartAsync(KernelTestEnvironment environment, bool enabled, string? unixSocket = null, Action<SidecarlessAccelerationOptions>? configure = null, IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(address, 0, o => o.Protocols = HttpProtocols.Http1);
            k.Listen(address, 0, o => o.Protocols = HttpProtocols.Http2);
            k.Listen(address, 0, o =>
            {
                o.Protocols = HttpProtocols.Http1AndHttp2;
                o.UseHttps(SelfSigned());
            });
            if (unixSocket is not null)
            {
                k.ListenUnixSocket(unixSocket);
            }
        });
        builder.Services.AddSidecarlessAcceleration(o =>
        {
            environment.Apply(o);
            o.Enabled = enabled;
            configure?.Invoke(o);
        });
        WebApplication app = builder.Build();
        var backend = new Backend(app);
        app.MapGet("/bytes/{n:int}", async (int n, HttpContext ctx) =>
        {
            ctx.Response.ContentLength = n;
            await Pattern.WriteAsync(ctx.Response.Body, n, ctx.RequestAborted);
        });
        app.MapGet("/noted/{n:int}", async (int n, HttpContext ctx) =>
        {
            backend.NotedFeature = ctx.Features.Get<IAccelerationFeature>();
            ctx.Response.ContentLength = n;
            await Pattern.WriteAsync(ctx.Response.Body, n, ctx.RequestAborted);
        });
        app.MapGet("/blocks/{n:long}", async (long n, HttpContext ctx) =>
        {
            ctx.Response.ContentLength = n;
            await Pattern.Blocks.WriteAsync(ctx.Response.Body, n, ctx.RequestAborted);
        });
        app.MapGet("/single/{n:int}", async (int n, bool? chunked, HttpContext ctx) =>
        {
            // The whole body in one write, as Results.Bytes and a serializer's buffered output do; with chunked=true
            // without a Content-Length (HTTP/1.1 then frames it as one chunk).
            byte[] body = new byte[n];
            for (int i = 0; i < n; i++)
            {
                body[i] = Pattern.At(i);
            }

            if (chunked != true)
            {
                ctx.Response.ContentLength = n;
            }

            Interlocked.Increment(ref backend._activeSingles);
            try
            {
                await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted);
            }
            finally
            {
                Interlocked.Decrement(ref backend._activeSingles);
            }
        });
        app.MapPost("/check/{n:long}", async (long n, HttpContext ctx) =>
        {
            // Reads an upload and says whether it was exactly the pattern of n bytes ("ok", or the first difference).
            ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()!.MaxRequestBodySize = null;
            return await Pattern.VerifyAsync(ctx.Request.Body, n, ctx.RequestAborted) ?? "ok";
        });
        app.MapPost("/echo", async (HttpContext ctx) =>
        {
            Interlocked.Increment(ref backend._activeEchoes);
            ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()!.MaxRequestBodySize = null; // streams of any length
            try
            {
                await ctx.Request.Body.CopyToAsync(ctx.Response.Body, ctx.RequestAborted);
            }
            finally
            {
                Interlocked.Decrement(ref backend._activeEchoes);
            }
        });
        app.UseWebSockets();
        app.Map("/ws", async (HttpContext ctx) =>
        {
            using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
            byte[] buffer = new byte[64 * 1024];
            while (true)
            {
                var r = await ws.ReceiveAsync(buffer, ctx.RequestAborted);
                if (r.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
                {
                    await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, ctx.RequestAborted);
                    return;
                }

                await ws.SendAsync(buffer.AsMemory(0, r.Count), r.MessageType, r.EndOfMessage, ctx.RequestAborted);
            }
        });
        app.MapGet("/pool", (HttpContext ctx) => ctx.Features.Get<Microsoft.AspNetCore.Connections.Features.IMemoryPoolFeature>()?.MemoryPool is { } pool
            ? $"{pool.GetType().Name} {pool.MaxBufferSize}"
            : "none");
        app.MapGet("/feature", (HttpContext ctx) => ctx.Features.Get<IAccelerationFeature>() is { } f
            ? Results.Json(new
            {
                accelerated = f.IsAccelerated, outcome = f.Outcome.ToString(), path = f.Outbound.Path.ToString(), reason = f.Outbound.TcpReason,
                connection = ctx.Connection.Id, redirectedBytes = f.Outbound.RedirectedBytes, tcpBytes = f.Outbound.TcpBytes,
                pacedWrites = f.Outbound.PacedWrites, leftFastPathAt = f.Outbound.LeftFastPathAt,
            })
            : Results.NotFound());
        await app.StartAsync();

        string[] addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .Where(a => a.Contains(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"://[{address}]" : $"://{address}", StringComparison.Ordinal)).ToArray();
        backend.Http1 = new Uri(addresses[0]);
        backend.Http2 = new Uri(addresses[1]);
        backend.Https = new Uri(addresses[2]);
        return backend;
    }

    /// <summary>A throwaway self-signed certificate for CN=localhost, valid for an hour.</summary>
    internal static System.Security.Cryptography.X509Certificates.X509Certificate2 SelfSigned()
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=localhost", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(cert.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12), null);
    }

    public async Task<HealthReportEntry> HealthAsync()
        => (await _app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["sidecarless-acceleration"];

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
