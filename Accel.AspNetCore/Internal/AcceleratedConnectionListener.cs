using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Accel.AspNetCore.Internal;

/// <summary>Kestrel's socket listener, with each accepted connection registered before Kestrel uses it: the
/// connection gets <see cref="IAccelerationFeature"/>, and while acceleration is on its reads are counted (for the
/// backlog bound) and its writes paced; a connection that turns out not to be in the fast path has its reads passed
/// straight through from its first wait after a request (<see cref="CountingPipeReader"/>) and costs a check per
/// flush. The connection's last window is settled when Kestrel aborts or disposes it (<see cref="AcceleratedConnection"/>).</summary>
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

        // The kernel put the socket into the fast path when the connection was established. What it did is read only
        // when something needs it (a report, a wait for the reader, the feature's figures), so a connection that carries
        // a small request pays no syscall for it; reading never fails the connection.
        SocketRegistration registration = engine.RegisterOnFirstUse(socket, window: true);
        var feature = new AccelerationFeature(registration);
        context.Features.Set<IAccelerationFeature>(feature);
        if (registration.PassesThrough)
        {
            return context;
        }

        var output = new PacingPipeWriter(context.Transport.Output, registration, engine.PacedPieceBytes);
        context.Transport = new CountedDuplexPipe(new CountingPipeReader(context.Transport.Input, feature), output);
        return new AcceleratedConnection(context, output);
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => inner.UnbindAsync(cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private sealed class CountedDuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
