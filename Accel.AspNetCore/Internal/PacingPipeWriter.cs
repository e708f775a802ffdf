using System.IO.Pipelines;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's output for an accelerated connection: before bytes are flushed to the socket, waits until the peer has
/// read enough of what was sent before (<see cref="SocketRegistration.WaitToSendAsync"/>), so that a large body
/// keeps the connection in the fast path instead of moving it to TCP for good. Buffers nothing of its own: the
/// bytes stay in Kestrel's pipe, and the wait holds the flush, which holds the application's write.
/// </summary>
internal sealed class PacingPipeWriter(PipeWriter inner, SocketRegistration registration) : PipeWriter
{
    private long _unflushed;
    private CancellationTokenSource _waitCanceled = new();

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes;

    public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

    public override void Advance(int bytes)
    {
        _unflushed += bytes;
        inner.Advance(bytes);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        long count = _unflushed;
        _unflushed = 0;
        if (_waitCanceled.IsCancellationRequested)
        {
            _waitCanceled = new CancellationTokenSource();
        }

        ValueTask wait = registration.WaitToSendAsync(count, _waitCanceled.Token);
        return wait.IsCompletedSuccessfully ? inner.FlushAsync(cancellationToken) : FlushAfterAsync(wait, cancellationToken);
    }

    /// <summary>Also ends a wait for the reader: Kestrel cancels the pending flush of a connection it aborts.</summary>
    public override void CancelPendingFlush()
    {
        Volatile.Read(ref _waitCanceled).Cancel();
        inner.CancelPendingFlush();
    }

    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

    private async ValueTask<FlushResult> FlushAfterAsync(ValueTask wait, CancellationToken cancellationToken)
    {
        // The caller's token ends the wait too; the inner flush then throws for it, or reports CancelPendingFlush.
        using (cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _waitCanceled))
        {
            try
            {
                await wait.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        return await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
