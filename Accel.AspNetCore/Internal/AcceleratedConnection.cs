using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's connection, whole, with one addition: before Kestrel disposes it (which completes Kestrel's own pipe and
/// so ends its send loop, which then closes the socket), the connection's last window is settled
/// (<see cref="PacingPipeWriter.SettleWindow"/>). Kestrel never completes the output it handed to the application side,
/// which is the library's writer, so its disposal is the writer's last moment with the socket open.
/// </summary>
internal sealed class AcceleratedConnection(ConnectionContext inner, PacingPipeWriter output) : ConnectionContext
{
    public override string ConnectionId
    {
        get => inner.ConnectionId;
        set => inner.ConnectionId = value;
    }

    public override IFeatureCollection Features => inner.Features;

    public override IDictionary<object, object?> Items
    {
        get => inner.Items;
        set => inner.Items = value;
    }

    public override IDuplexPipe Transport
    {
        get => inner.Transport;
        set => inner.Transport = value;
    }

    public override CancellationToken ConnectionClosed
    {
        get => inner.ConnectionClosed;
        set => inner.ConnectionClosed = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => inner.LocalEndPoint;
        set => inner.LocalEndPoint = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => inner.RemoteEndPoint;
        set => inner.RemoteEndPoint = value;
    }

    public override void Abort(ConnectionAbortedException abortReason) => inner.Abort(abortReason);

    public override void Abort() => inner.Abort();

    public override ValueTask DisposeAsync()
    {
        output.SettleWindow(exception: null, atDisposal: true);
        return inner.DisposeAsync();
    }
}
