using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Accel.Benchmarks.Http;

/// <summary>
/// The server process of the HTTP benchmark: one Kestrel app per client mode, all in one long-lived process, so that
/// the client can switch between them slice by slice while the process (its JIT state, its heap, its place on the CPUs)
/// stays the same. Without the library (Kestrel's own socket transport): <c>none</c>, <c>none2</c> (the A/A mode's),
/// <c>factory</c>, <c>to-plain</c>, <c>unix</c> (on Unix sockets), <c>floor</c> and <c>factory-floor</c> (their
/// connections redirected by <see cref="MinimalRedirect"/>, set up by the client, and Kestrel's blocks of the
/// library's size); with it:
/// <c>off</c> (<c>Enabled = false</c>), <c>handler</c>, <c>plain</c> and <c>accel</c> (on). One app per mode, because the sequential cases interleave the
/// modes request by request: an app that served more of the modes was warmer in the CPU caches than one that served
/// one (a second no-library app measured 1.02 [1.01-1.03] of <c>none</c>, which also served four other modes, in h2c
/// 1 KiB p50, and 0.99 [0.98-1.00] once it served three modes and <c>none</c> two). Each serves /data/{n} (n bytes, n up to 1 MiB),
/// /stream/{n} (n bytes in 64 KiB writes), /stats (the acceleration health data), /gw/{path} (a YARP gateway: it forwards
/// to the app's own HTTP/1.1 endpoint) and the gRPC example's Transfer contract (on h2c, without work per byte:
/// <see cref="BenchTransferService"/>), and a Redis-protocol cache on a
/// third port (the process-scope example's; <see cref="Redis.RedisBenchmarks"/>).
/// </summary>
internal static class BenchServer
{
    private static readonly byte[] Payload = MakePayload();

    /// <summary>Prints one line "READY" followed by the endpoints as mode=h1url,h2url pairs, then serves until killed.</summary>
    public static async Task<int> RunAsync(string pinRoot, string cgroup, string udsPrefix)
    {
        var apps = new List<(string Mode, WebApplication App)>
        {
            ("none", Build(library: null, null)),
            ("none2", Build(library: null, null)),
            ("factory", Build(library: null, null)),
            ("to-plain", Build(library: null, null)),
            ("unix", Build(library: null, udsPrefix)),
            ("floor", Build(library: null, null, largeBlocks: true)),
            ("factory-floor", Build(library: null, null, largeBlocks: true)),
            ("off", Build(library: false, null, pinRoot, cgroup)),
            ("handler", Build(library: true, null, pinRoot, cgroup)),
            ("plain", Build(library: true, null, pinRoot, cgroup)),
            ("accel", Build(library: true, null, pinRoot, cgroup)), // last: see Build
        };
        var lines = new List<string>();
        foreach (var (mode, app) in apps)
        {
            app.Services.GetRequiredService<RequestCounts>().Mode = mode;
            await app.StartAsync();
            string[] urls = [.. app.Urls];
            app.Services.GetRequiredService<Gateway>().Destination = urls[0];
            lines.Add($"{mode}={urls[0]},{urls[1]}");
            // The Redis-protocol endpoint (Kestrel's own transport without the library, the library's with it).
            int resp = app.Services.GetRequiredService<RespEndpoint>().Options!.IPEndPoint!.Port;
            lines.Add($"resp-{mode}={resp}");
        }

        lines.Add($"uds=http://unix:{udsPrefix}-h1.sock,http://unix:{udsPrefix}-h2.sock");
        Console.WriteLine("READY " + string.Join(' ', lines));
        Console.Out.Flush();
        await Task.Delay(Timeout.Infinite);
        return 0;
    }

    private static WebApplication Build(bool? library, string? udsPrefix, string? pinRoot = null, string? cgroup = null, bool largeBlocks = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var resp = new RespEndpoint();
        builder.Services.AddSingleton(resp);
        // The gateway's forwarder connects the way YARP's own client factory sets it up; with the library, through the
        // fast path (SidecarlessAcceleration.ConnectCallback serves the app started last: this one, "accel").
        builder.Services.AddSingleton(new Gateway(library == true));
        builder.Services.AddHttpForwarder();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<Accel.ScopeDemo.RespServer>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1);
            k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2);
            k.Listen(System.Net.IPAddress.Loopback, 0, o =>
            {
                o.UseConnectionHandler<Accel.ScopeDemo.RespConnectionHandler>();
                resp.Options = o;
            });
            if (udsPrefix is not null)
            {
                k.ListenUnixSocket(udsPrefix + "-h1.sock", o => o.Protocols = HttpProtocols.Http1);
                k.ListenUnixSocket(udsPrefix + "-h2.sock", o => o.Protocols = HttpProtocols.Http2);
            }
        });
        if (library is { } enabled)
        {
            builder.Services.AddSidecarlessAcceleration(o =>
            {
                o.Enabled = enabled;
                o.PinRoot = pinRoot!;
                o.CgroupPath = cgroup;
                o.MountBpffsIfMissing = false;
            });
        }

        if (largeBlocks)
        {
            // The one-lookup redirect's app reads in the blocks the library gives Kestrel (KestrelBlockBytes' default),
            // so that it measures what a redirect can gain with them: the ceiling for large bodies too.
            builder.Services.AddSingleton<IMemoryPoolFactory<byte>>(new LargeBlockPools());
        }

        builder.Services.AddHealthChecks();
        var counts = new RequestCounts();
        builder.Services.AddSingleton(counts);
        var app = builder.Build();
        app.Use(async (ctx, next) =>
        {
            counts.Started(ctx);
            try
            {
                await next(ctx);
            }
            finally
            {
                counts.Completed();
            }
        });
        app.MapGet(RequestCounts.Path, () => RequestCounts.Report());
        app.MapGet(RequestCounts.StatePath, (HttpContext ctx) => RequestCounts.State(ctx));
        app.MapGet("/data/{n:int}", (int n) => Results.Bytes(Payload.AsMemory(0, Math.Clamp(n, 0, Payload.Length))));
        app.MapGet("/stream/{n:long}", async (long n, HttpContext ctx) =>
        {
            ctx.Response.ContentLength = n;
            for (long sent = 0; sent < n;)
            {
                int chunk = (int)Math.Min(64 * 1024, n - sent);
                await ctx.Response.Body.WriteAsync(Payload.AsMemory(0, chunk), ctx.RequestAborted);
                sent += chunk;
            }
        });
        // Reads an upload to its end and says how many bytes came; Kestrel's 30 MB limit on a request body is lifted.
        app.MapPost("/sink", async (HttpContext ctx) =>
        {
            ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()!.MaxRequestBodySize = null;
            long got = 0;
            while (true)
            {
                var read = await ctx.Request.BodyReader.ReadAsync(ctx.RequestAborted);
                got += read.Buffer.Length;
                ctx.Request.BodyReader.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return got.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        });
        app.Map("/gw/{**rest}", async (string rest, HttpContext ctx, IHttpForwarder forwarder, Gateway gateway) =>
        {
            ctx.Request.Path = "/" + rest;
            ForwarderError error = await forwarder.SendAsync(ctx, gateway.Destination!, gateway.Invoker, Gateway.RequestConfig, HttpTransformer.Default);
            if (error != ForwarderError.None)
            {
                throw new InvalidOperationException($"gateway: {error}", ctx.Features.Get<IForwarderErrorFeature>()?.Exception);
            }
        });
        app.MapGrpcService<BenchTransferService>();
        // The whole process's allocations so far (every app's): the client reads it around a slice of one mode.
        app.MapGet("/allocated", () => GC.GetTotalAllocatedBytes().ToString(System.Globalization.CultureInfo.InvariantCulture));
        app.MapGet("/stats", async (HealthCheckService health) =>
            (await health.CheckHealthAsync()).Entries.TryGetValue("sidecarless-acceleration", out var e) ? Results.Json(e.Data) : Results.Json(new { }));
        return app;
    }

    /// <summary>The largest response /data/{n} serves.</summary>
    public const int MaxDataBytes = 1 << 20;

    private static byte[] MakePayload()
    {
        byte[] payload = new byte[MaxDataBytes];
        new Random(42).NextBytes(payload);
        return payload;
    }
}

/// <summary>An app's YARP gateway: where it forwards (the app's own HTTP/1.1 endpoint, once bound) and the client it
/// forwards with.</summary>
internal sealed class Gateway(bool accelerated)
{
    /// <summary>HTTP/1.1 to the service, as a gateway in front of plain-HTTP services forwards.</summary>
    public static readonly ForwarderRequestConfig RequestConfig = new() { Version = System.Net.HttpVersion.Version11, VersionPolicy = System.Net.Http.HttpVersionPolicy.RequestVersionExact };

    public string? Destination { get; set; }

    /// <summary>What YARP's ForwarderHttpClientFactory builds, with the library's connect callback when accelerated.</summary>
    public System.Net.Http.HttpMessageInvoker Invoker { get; } = new(new System.Net.Http.SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        UseCookies = false,
        ActivityHeadersPropagator = null,
        ConnectTimeout = TimeSpan.FromSeconds(15),
        ConnectCallback = accelerated ? Accel.AspNetCore.SidecarlessAcceleration.ConnectCallback : null,
    });
}

/// <summary>Kestrel's pools of the library's blocks, for an app without the library (the one-lookup redirect's).</summary>
internal sealed class LargeBlockPools : IMemoryPoolFactory<byte>
{
    private static readonly int BlockBytes = new Accel.AspNetCore.SidecarlessAccelerationOptions().KestrelBlockBytes;

    public System.Buffers.MemoryPool<byte> Create(MemoryPoolOptions? options = null)
        => new Accel.AspNetCore.Internal.LargeBlockMemoryPool(BlockBytes, Accel.AspNetCore.Internal.AcceleratedMemoryPoolFactory.FreeBlocksKept(BlockBytes));
}

/// <summary>Where an app's Redis-protocol endpoint listens, once Kestrel has bound it.</summary>
internal sealed class RespEndpoint
{
    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Options { get; set; }
}
