using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Accel.AspNetCore.Internal;

internal sealed class AcceleratedConnectionListener(
    Socket listenSocket,
    SocketConnectionContextFactory contexts,
    AccelerationEngine engine,
    bool noDelay) : IConnectionListener
{
    public EndPoint EndPoint { get; } = listenSocket.LocalEndPoint!;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listenSocket.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return null; // unbound
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted)
            {
                return null; // unbound
            }
            catch (SocketException)
            {
                continue; // the client reset the connection before it was accepted
            }

            socket.NoDelay = noDelay;
            // The kernel put the socket into the fast path when the connection was established; this
            // only reads what it did (one syscall) and never fails the connection.
            SocketRegistration registration = engine.Register(socket);
            ConnectionContext context = contexts.Create(socket);
            var feature = new AccelerationFeature(registration);
            context.Features.Set<IAccelerationFeature>(feature);
            if (registration.IsRegistered)
            {
                context.Transport = new CountedDuplexPipe(new CountingPipeReader(context.Transport.Input, feature), new PacingPipeWriter(context.Transport.Output, registration));
            }

            return context;
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        listenSocket.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        listenSocket.Dispose();
        contexts.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class CountedDuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
