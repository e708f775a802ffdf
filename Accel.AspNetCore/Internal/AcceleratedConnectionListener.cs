using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Accel.AspNetCore.Internal;

/// <summary>Kestrel's socket listener, with each accepted connection registered before Kestrel uses it: the
/// connection gets <see cref="IAccelerationFeature"/>, and when it is in the fast path its reads are counted (for the
/// backlog bound) and its writes paced.</summary>
internal sealed class AcceleratedConnectionListener(IConnectionListener inner, AccelerationEngine engine) : IConnectionListener
{
    public EndPoint EndPoint => inner.EndPoint;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        ConnectionContext? context = await inner.AcceptAsync(cancellationToken).ConfigureAwait(false);
        if (context?.Features.Get<IConnectionSocketFeature>()?.Socket is not { } socket)
        {
            return context;
        }

        // The kernel put the socket into the fast path when the connection was established; this only reads what it
        // did (one syscall) and never fails the connection.
        SocketRegistration registration = engine.Register(socket);
        var feature = new AccelerationFeature(registration);
        context.Features.Set<IAccelerationFeature>(feature);
        if (registration.IsRegistered)
        {
            context.Transport = new CountedDuplexPipe(new CountingPipeReader(context.Transport.Input, feature), new PacingPipeWriter(context.Transport.Output, registration, engine.PacedPieceBytes));
        }

        return context;
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => inner.UnbindAsync(cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private sealed class CountedDuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
