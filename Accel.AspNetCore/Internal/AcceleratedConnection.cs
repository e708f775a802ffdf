using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's connection, whole, with one addition: the connection's last window is settled
/// (<see cref="PacingPipeWriter.SettleWindow"/>) while the socket is still open, which Kestrel's own calls end. Kestrel
/// never completes the output it handed to the application side (the library's writer): it disposes the connection,
/// which completes Kestrel's own pipe, whose send loop then closes the socket; or it aborts the connection first (HTTP/1.1
/// does when its client closes), which closes the socket at once. Settling before either covers both.
/// </summary>
/// <remarks>At an abort, bytes of the last window still on their way are not sent and may be counted (at most that
/// window); at a client's close, when Kestrel aborts an idle connection, there are none.</remarks>
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

    public override void Abort(ConnectionAbortedException abortReason)
    {
        output.SettleWindow(unannounced: 0);
        inner.Abort(abortReason);
    }

    public override void Abort()
    {
        output.SettleWindow(unannounced: 0);
        inner.Abort();
    }

    public override ValueTask DisposeAsync()
    {
        output.SettleWindow(output.Unflushed);
        return inner.DisposeAsync();
    }
}
