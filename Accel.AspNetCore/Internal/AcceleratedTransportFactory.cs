using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's transport for TCP endpoints: the socket transport, except that the listening socket is opted
/// into the fast path before it listens, and every accepted socket is registered before Kestrel reads or
/// writes it. Kestrel's <see cref="SocketTransportOptions"/> (UseSockets) are honoured. Endpoints that are
/// not IP (Unix domain sockets, named pipes) are left to Kestrel's own transports.
/// </summary>
internal sealed class AcceleratedTransportFactory(
    AccelerationEngineProvider engine,
    IOptions<SocketTransportOptions> socketOptions,
    ILoggerFactory loggers) : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        SocketTransportOptions options = socketOptions.Value;
        var listenSocket = options.CreateBoundListenSocket(endpoint);
        try
        {
            AccelerationEngine accel = engine.Engine;
            accel.PrepareListener(listenSocket, reportsConsumption: true); // CountingPipeReader reports
            listenSocket.Listen(options.Backlog);
            var contexts = new SocketConnectionContextFactory(
                new SocketConnectionFactoryOptions
                {
                    IOQueueCount = options.IOQueueCount,
                    WaitForDataBeforeAllocatingBuffer = options.WaitForDataBeforeAllocatingBuffer,
                    MaxReadBufferSize = options.MaxReadBufferSize,
                    MaxWriteBufferSize = options.MaxWriteBufferSize,
                    UnsafePreferInlineScheduling = options.UnsafePreferInlineScheduling,
                },
                loggers.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets"));
            return new ValueTask<IConnectionListener>(new AcceleratedConnectionListener(listenSocket, contexts, accel, options.NoDelay));
        }
        catch
        {
            listenSocket.Dispose();
            throw;
        }
    }
}
