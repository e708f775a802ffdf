using System.Collections.Concurrent;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Accel.AspNetCore.Internal;

/// <summary>Which IHttpClientFactory clients connect through the fast path: every one (AddSidecarlessAcceleration), or
/// those named with UseSidecarlessAcceleration.</summary>
internal sealed class AcceleratedClients
{
    public bool All { get; set; }

    public HashSet<string> Names { get; } = new(StringComparer.Ordinal);

    public bool Includes(string name) => All || Names.Contains(name);
}

/// <summary>
/// Sets the accelerated connect callback on a client's primary handler after all of the client's own configuration
/// has run (a filter wraps every configured action, <c>ConfigurePrimaryHttpMessageHandler</c> included), so that a
/// client that builds its own <see cref="SocketsHttpHandler"/> is accelerated too. A handler with a ConnectCallback of
/// its own is left alone, and a handler that is not a SocketsHttpHandler cannot be accelerated: each says so once
/// per client, with a warning.
/// </summary>
internal sealed class AccelerationHandlerFilter(
    AcceleratedConnector connector,
    IOptions<AcceleratedClients> clients,
    ILoggerFactory loggers) : IHttpMessageHandlerBuilderFilter
{
    private readonly ILogger _logger = loggers.CreateLogger("Accel");
    private readonly ConcurrentDictionary<string, bool> _warned = new(StringComparer.Ordinal);

    public Action<HttpMessageHandlerBuilder> Configure(Action<HttpMessageHandlerBuilder> next) => builder =>
    {
        next(builder);
        string name = builder.Name ?? Options.DefaultName;
        if (!clients.Value.Includes(name))
        {
            return;
        }

        switch (builder.PrimaryHandler)
        {
            case SocketsHttpHandler { ConnectCallback: null } sockets:
                sockets.ConnectCallback = connector.ConnectAsync;
                break;
            case SocketsHttpHandler { ConnectCallback: { Target: AcceleratedConnector } }:
                break;
            case SocketsHttpHandler:
                if (_warned.TryAdd(name, true))
                {
                    Log.OwnConnectCallback(_logger, name);
                }

                break;
            case var other:
                if (_warned.TryAdd(name, true))
                {
                    Log.HandlerNotAccelerated(_logger, name, other.GetType().FullName ?? other.GetType().Name);
                }

                break;
        }
    };
}
