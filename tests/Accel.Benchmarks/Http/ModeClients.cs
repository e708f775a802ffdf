using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Accel.AspNetCore;
using Accel.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Accel.Benchmarks.Http;

/// <summary>
/// The client side of every mode, alive for the whole run: <c>none</c> and <c>none-aa</c> are two default
/// <see cref="SocketsHttpHandler"/>s with no library (the second one is the A/A check: the same, to a second app),
/// <c>off</c> and <c>accel</c> are IHttpClientFactory clients with the library (Enabled = false / true), <c>uds</c> a
/// default handler over the server's Unix sockets, <c>factory</c> an IHttpClientFactory client without the library (to
/// an app without it: what the factory's own handlers cost, apart from the library), <c>factory-quiet</c> the same
/// without the factory's logging handlers (<c>RemoveAllLoggers</c>), <c>handler</c> a default
/// SocketsHttpHandler whose ConnectCallback is the library's public <see cref="SidecarlessAcceleration.ConnectCallback"/>
/// (the library without the factory, as YARP uses it), <c>plain</c> a default SocketsHttpHandler with no library to an
/// accelerated app (a same-host client without the library calling a service that has it), <c>to-plain</c> the
/// handler client with the library's callback to an app without the library (a service with the library calling one
/// without it), <c>floor</c> a default SocketsHttpHandler without the library to an app without it, whose connections
/// a <see cref="MinimalRedirect"/> redirects (the most any sk_msg redirect can gain for HTTP: the measured ceiling),
/// <c>factory-floor</c> the <c>factory</c> client through the same redirect, to an app of its own (the ceiling of an
/// IHttpClientFactory client, the <c>accel</c> mode's like for like).
/// Every mode calls an app of its own in the server process (<see cref="BenchServer"/>); <c>none-aa</c> a second
/// no-library app, so that the A/A row holds every difference another mode has from <c>none</c> apart from the
/// library: its own client, its own app, its own connections. <see cref="RenewAsync"/> gives every mode new clients,
/// so new connections, once a round: a connection can keep an edge over another for its whole life (two large-download
/// modes on the same path differed by 15 to 20% on lasting connections), and with new connections every round that
/// edge is one more source of the noise the intervals show, not a mode's effect.
/// </summary>
internal sealed class ModeClients : IDisposable
{
    private readonly Dictionary<(string Mode, string Proto), HttpClient> _clients = new();
    private readonly Dictionary<(string Mode, string Proto), Func<HttpClient>> _fresh = new();
    private readonly Dictionary<(string Mode, string Proto), Func<HttpClient>> _round = new();
    private readonly List<IDisposable> _owned = new();
    private readonly List<IHostedLifecycleService> _lifecycle = new();
    private readonly HashSet<(string Mode, string Proto)> _ownsHandler = new(); // clients made here, with a handler of their own: disposed here
    private readonly HttpClient _probe;
    private readonly Stopwatch _sinceRenewal = Stopwatch.StartNew();

    public ModeClients(KernelTestEnvironment env, BenchServerProcess server, MinimalRedirect floor)
    {
        ServerPid = server.Process.Id;
        // Its own pool, so that reading the server's figures adds nothing to any mode's connections.
        _probe = new HttpClient(new SocketsHttpHandler()) { BaseAddress = new Uri(server.Endpoints["none"].H1) };
        _owned.Add(_probe);
        foreach (string mode in new[] { "none", "none-aa", "plain", "uds", "floor" })
        {
            var (h1, h2) = server.Endpoints[mode switch { "none-aa" => "none2", _ => mode }];
            foreach (var (proto, url) in new[] { ("h1", h1), ("h2c", h2) })
            {
                HttpClient Create()
                {
                    var handler = new SocketsHttpHandler();
                    if (mode == "uds")
                    {
                        string path = url.Replace("http://unix:", "", StringComparison.Ordinal);
                        handler.ConnectCallback = async (_, ct) =>
                        {
                            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                            await s.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                            return new NetworkStream(s, ownsSocket: true);
                        };
                    }
                    else if (mode == "floor")
                    {
                        handler.ConnectCallback = ThroughRedirect(floor);
                    }

                    return Configure(new HttpClient(handler) { BaseAddress = new Uri(mode == "uds" ? "http://localhost" : url) }, proto);
                }

                _clients[(mode, proto)] = Create();
                _ownsHandler.Add((mode, proto));
                _fresh[(mode, proto)] = Create;
            }
        }

        foreach (string mode in new[] { "factory", "factory-quiet", "factory-floor", "off", "accel" })
        {
            var (h1, h2) = server.Endpoints[mode switch { "factory-quiet" => "factory", _ => mode }];
            var services = new ServiceCollection();
            services.AddLogging();
            services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
            if (!mode.StartsWith("factory", StringComparison.Ordinal))
            {
                services.AddSidecarlessAcceleration(o =>
                {
                    env.Apply(o);
                    o.Enabled = mode == "accel";
                });
            }

            foreach (var (proto, url) in new[] { ("h1", h1), ("h2c", h2) })
            {
                // "<proto>-fresh" and "<proto>-round": the same client with the shortest handler lifetime the factory
                // allows, so that a client created a second or more after the last has a new handler, so new
                // connections (two names: the large downloads' slices and the rounds renew apart).
                foreach (string name in new[] { proto, $"{proto}-fresh", $"{proto}-round" })
                {
                    IHttpClientBuilder client = services.AddHttpClient(name, c => Configure(c, proto).BaseAddress = new Uri(url));
                    if (name != proto)
                    {
                        // Since .NET 9 the factory's default primary handler is a SocketsHttpHandler whose
                        // PooledConnectionLifetime is the handler lifetime: one second here, so a round's connections
                        // would close and reopen every second, which the other modes' do not (and a service's, with
                        // the default two minutes, hardly). Only the handler is to be renewed, not its connections.
                        client.SetHandlerLifetime(TimeSpan.FromSeconds(1))
                            .ConfigurePrimaryHttpMessageHandler((handler, _) => ((SocketsHttpHandler)handler).PooledConnectionLifetime = Timeout.InfiniteTimeSpan);
                    }

                    if (mode == "factory-quiet")
                    {
                        client.RemoveAllLoggers();
                    }
                    else if (mode == "factory-floor")
                    {
                        // The factory's own primary handler, as the library's handler filter finds it, with the
                        // redirect's connect callback.
                        client.ConfigurePrimaryHttpMessageHandler((handler, _) => ((SocketsHttpHandler)handler).ConnectCallback = ThroughRedirect(floor));
                    }
                }
            }

            ServiceProvider provider = services.BuildServiceProvider();
            _owned.Add(provider);
            var factory = provider.GetRequiredService<IHttpClientFactory>();
            _clients[(mode, "h1")] = factory.CreateClient("h1");
            _clients[(mode, "h2c")] = factory.CreateClient("h2c");
            _fresh[(mode, "h1")] = () => factory.CreateClient("h1-fresh");
            _fresh[(mode, "h2c")] = () => factory.CreateClient("h2c-fresh");
            _round[(mode, "h1")] = () => factory.CreateClient("h1-round");
            _round[(mode, "h2c")] = () => factory.CreateClient("h2c-round");
            if (mode == "accel")
            {
                // What a host does at start: the library's startup makes SidecarlessAcceleration.ConnectCallback
                // connect through this application's fast path.
                _lifecycle.AddRange(provider.GetServices<IHostedService>().OfType<IHostedLifecycleService>());
                foreach (IHostedLifecycleService service in _lifecycle)
                {
                    service.StartingAsync(CancellationToken.None).GetAwaiter().GetResult();
                }

                // A default SocketsHttpHandler with the library's public connect callback, as YARP or a gRPC channel
                // with a handler of its own uses it: the library without IHttpClientFactory's handlers. "handler" calls
                // an app with the library; "to-plain" an app without it (a service with the library calling a
                // same-host one without it).
                foreach (string callbackMode in new[] { "handler", "to-plain" })
                {
                    foreach (string proto in new[] { "h1", "h2c" })
                    {
                        string url = proto == "h1" ? server.Endpoints[callbackMode].H1 : server.Endpoints[callbackMode].H2;
                        HttpClient Create() => Configure(new HttpClient(new SocketsHttpHandler { ConnectCallback = SidecarlessAcceleration.ConnectCallback }) { BaseAddress = new Uri(url) }, proto);
                        _clients[(callbackMode, proto)] = Create();
                        _ownsHandler.Add((callbackMode, proto));
                        _fresh[(callbackMode, proto)] = Create;
                    }
                }
            }
        }
    }

    public HttpClient this[string mode, string proto] => _clients[(mode, proto)];

    /// <summary>Gives each of <paramref name="modes"/> new clients, so new connections, and opens them before anything
    /// is timed: 64 requests at once over HTTP/1.1 (the concurrent cases' connections), one over h2c (its one
    /// connection). The old clients' connections close (a factory client's once the factory retires its handler). At
    /// least a second after the last renewal, so that the factory hands out a new handler.</summary>
    public async Task RenewAsync(IReadOnlyList<string> modes)
    {
        TimeSpan wait = TimeSpan.FromSeconds(1.1) - _sinceRenewal.Elapsed;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        foreach (var key in _clients.Keys.Where(k => modes.Contains(k.Mode)).ToList())
        {
            HttpClient old = _clients[key];
            HttpClient renewed = _round.TryGetValue(key, out var round) ? round() : _fresh[key]();
            int opened = key.Proto == "h1" ? 64 : 1;
            await Task.WhenAll(Enumerable.Range(0, opened).Select(async _ =>
            {
                using var response = await renewed.GetAsync("/data/1024");
                response.EnsureSuccessStatusCode();
                await response.Content.ReadAsByteArrayAsync();
            }));
            _clients[key] = renewed;
            if (_ownsHandler.Contains(key))
            {
                old.Dispose();
            }
        }

        _sinceRenewal.Restart();
    }

    public int ServerPid { get; }

    /// <summary>GETs <paramref name="path"/> from the server's no-library app through a client of its own (the stall
    /// watch's reads: <see cref="RequestCounts"/>).</summary>
    public Task<string> ServerGetAsync(string path, CancellationToken cancellationToken) => _probe.GetStringAsync(path, cancellationToken);

    /// <summary>Bytes the server process has allocated so far (<see cref="GC.GetTotalAllocatedBytes"/>, all its apps),
    /// read over a connection of its own.</summary>
    public async Task<long> ServerAllocatedBytesAsync() => long.Parse(await _probe.GetStringAsync("/allocated"), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A client of <paramref name="mode"/> that connects anew (its own pool; for the factory modes, a
    /// handler created a second or more after the previous one). The caller disposes it; a factory client's
    /// handler is the factory's to dispose.</summary>
    public HttpClient Fresh(string mode, string proto) => _fresh[(mode, proto)]();

    public void Dispose()
    {
        foreach (IHostedLifecycleService service in _lifecycle)
        {
            service.StoppedAsync(CancellationToken.None).GetAwaiter().GetResult();
        }

        foreach (var (key, client) in _clients)
        {
            if (_ownsHandler.Contains(key))
            {
                client.Dispose();
            }
        }

        foreach (IDisposable d in _owned)
        {
            d.Dispose();
        }
    }

    /// <summary>A connect callback whose connections go through <paramref name="floor"/>'s redirect: it returns once
    /// both ends are in its sockhash (a message sent before would be dropped).</summary>
    private static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> ThroughRedirect(MinimalRedirect floor)
        => async (context, ct) =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await s.ConnectAsync(context.DnsEndPoint, ct);
                await floor.WaitForBothEndsAsync(s, ct);
                return new NetworkStream(s, ownsSocket: true);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        };

    private static HttpClient Configure(HttpClient client, string proto)
    {
        if (proto == "h2c")
        {
            client.DefaultRequestVersion = HttpVersion.Version20;
            client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        return client;
    }
}
