using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's transport for TCP endpoints: Kestrel's own socket transport, whole (its options, its accept loop, its
/// memory pool, whose blocks <see cref="AcceleratedMemoryPoolFactory"/> makes larger), with two additions. Its
/// listening sockets are opted into the fast path before they listen (<see cref="ListenSocketOptIn"/>), and each
/// accepted connection is registered before Kestrel reads or writes it
/// (what the kernel did with it is read when something needs it). With acceleration off, connections only get the
/// feature that says why, so the library present but off runs Kestrel's own code. Endpoints that are not IP (Unix
/// domain sockets, named pipes) are left to Kestrel.
/// </summary>
internal sealed class AcceleratedTransportFactory(
    AccelerationEngineProvider engine,
    IOptions<SocketTransportOptions> socketOptions,
    IOptions<SidecarlessAccelerationOptions> options,
    IServiceProvider services,
    ILoggerFactory loggers) : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly SocketTransportFactory _sockets = new(socketOptions, loggers);
    private int _poolChecked;

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        AccelerationEngine accel = engine.Engine;
        if (AcceleratedMemoryPoolFactory.WantsLargeBlocks(options.Value, accel)
            && Interlocked.Exchange(ref _poolChecked, 1) == 0
            && services.GetService<IMemoryPoolFactory<byte>>() is not AcceleratedMemoryPoolFactory)
        {
            Log.KestrelPoolNotWrapped(loggers.CreateLogger("Accel"));
        }

        IConnectionListener listener = await _sockets.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
        return new AcceleratedConnectionListener(listener, accel); // also when off: the feature says why
    }
}

/// <summary>Wraps <see cref="SocketTransportOptions.CreateBoundListenSocket"/>: a TCP listening socket is opted in (as
/// a reader that reports its consumption: the transport does) before Kestrel calls Listen on it.</summary>
internal sealed class ListenSocketOptIn(AccelerationEngineProvider engine) : IPostConfigureOptions<SocketTransportOptions>
{
    public void PostConfigure(string? name, SocketTransportOptions options)
    {
        Func<EndPoint, System.Net.Sockets.Socket> create = options.CreateBoundListenSocket;
        options.CreateBoundListenSocket = endpoint =>
        {
            System.Net.Sockets.Socket socket = create(endpoint);
            if (socket.ProtocolType == System.Net.Sockets.ProtocolType.Tcp && endpoint is IPEndPoint)
            {
                // CountingPipeReader reports the reads; PacingPipeWriter announces every byte sent and settles the last window.
                engine.Engine.OptInWithWindows(socket, reportsConsumption: true);
            }

            return socket;
        };
    }
}
