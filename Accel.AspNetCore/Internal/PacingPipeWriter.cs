using System.IO.Pipelines;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Kestrel's output for an accelerated connection: before bytes are flushed to the socket, waits until the peer has
/// read enough of what was sent before (<see cref="SocketRegistration.WaitToSendAsync"/>), so that a large body
/// keeps the connection in the fast path instead of moving it to TCP for good. The bytes stay in Kestrel's pipe, and
/// the wait holds the flush, which holds the application's write.
/// </summary>
/// <remarks>
/// A flush is at most <c>pieceBytes</c> (<see cref="AccelerationEngine.PacedPieceBytes"/>) and a last buffer, so that a
/// reader that has caught up makes room for it: HTTP/1.1 hands a body written in one call
/// (<c>Results.Bytes</c>, one <c>WriteAsync</c> of a large array) to this writer whole before its one flush, and the
/// kernel would see more unread than the bound however long that flush waited. Bytes written past the piece go to a
/// <see cref="SpillBuffer"/> instead of the pipe, and the flush moves them into the pipe a piece at a time, each after
/// its own wait. Only such writes pay that copy; HTTP/2 frames and streamed bodies are flushed in pieces already.
/// </remarks>
internal sealed class PacingPipeWriter(PipeWriter inner, SocketRegistration registration, long pieceBytes) : PipeWriter
{
    private readonly SpillBuffer _spill = new();
    private long _unflushed; // in the pipe, since the last flush
    private bool _spilling; // the memory last handed out is the spill buffer's
    private CancellationTokenSource _waitCanceled = new();

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes + _spill.Length;

    public override Memory<byte> GetMemory(int sizeHint = 0)
        => SpillNext() ? _spill.GetMemory(sizeHint) : inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0)
        => SpillNext() ? _spill.GetMemory(sizeHint).Span : inner.GetSpan(sizeHint);

    /// <summary>Whether the next bytes go to the spill buffer: once this flush's piece is in the pipe, and until the flush
    /// has moved everything spilled (bytes stay in the order they were written). A connection out of the fast path (its
    /// client does not use the library) has nothing to pace, and its bytes go straight into the pipe; whether it is, is
    /// read the first time a flush outgrows a piece.</summary>
    private bool SpillNext() => _spilling = _spill.Length > 0 || (_unflushed >= pieceBytes && !registration.IsOutOfFastPath());

    public override void Advance(int bytes)
    {
        if (_spilling)
        {
            _spill.Advance(bytes);
            return;
        }

        _unflushed += bytes;
        inner.Advance(bytes);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_waitCanceled.IsCancellationRequested)
        {
            _waitCanceled = new CancellationTokenSource();
        }

        if (_spill.Length > 0)
        {
            return FlushInPiecesAsync(cancellationToken);
        }

        long count = _unflushed;
        _unflushed = 0;
        ValueTask wait = registration.WaitToSendAsync(count, _waitCanceled.Token);
        return wait.IsCompletedSuccessfully ? inner.FlushAsync(cancellationToken) : FlushAfterAsync(wait, cancellationToken);
    }

    /// <summary>Also ends a wait for the reader: Kestrel cancels the pending flush of a connection it aborts.</summary>
    public override void CancelPendingFlush()
    {
        Volatile.Read(ref _waitCanceled).Cancel();
        inner.CancelPendingFlush();
    }

    public override void Complete(Exception? exception = null)
    {
        try
        {
            if (exception is null)
            {
                SettleWindow(_unflushed + _spill.Length); // completion sends both
            }

            MoveSpillOnCompletion(exception);
        }
        finally
        {
            inner.Complete(exception);
        }
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        try
        {
            if (exception is null)
            {
                SettleWindow(_unflushed + _spill.Length); // completion sends both
            }

            MoveSpillOnCompletion(exception);
        }
        catch (Exception e)
        {
            inner.Complete(exception);
            return ValueTask.FromException(e);
        }

        return inner.CompleteAsync(exception);
    }

    /// <summary>The writer's end, at its own completion without an error, when Kestrel aborts the connection, or when
    /// Kestrel disposes it, whichever comes first (the others do nothing): counts what goes in the connection's last window
    /// (<see cref="SocketRegistration.SettleWindow"/>), with <paramref name="unannounced"/>, the bytes still to go out that
    /// were never announced: at completion those written but not flushed and those spilled, at Kestrel's disposal (which
    /// completes Kestrel's own pipe, so commits what was written, but never moves the spill) the first only, at an abort
    /// none.</summary>
    public void SettleWindow(long unannounced) => registration.SettleWindow(unannounced);

    /// <summary>Bytes written and not yet flushed: completing Kestrel's pipe commits them.</summary>
    public long Unflushed => _unflushed;

    /// <summary>Completing commits what was written and not flushed: spilled bytes go with it, unpaced, rather than be
    /// lost (the kernel may then move the direction to TCP, in order); after an error nothing more is sent.</summary>
    private void MoveSpillOnCompletion(Exception? exception)
    {
        try
        {
            if (exception is null && _spill.Length > 0)
            {
                _spill.MoveTo(inner, long.MaxValue);
            }
        }
        finally
        {
            _spill.Clear();
        }
    }

    private async ValueTask<FlushResult> FlushInPiecesAsync(CancellationToken cancellationToken)
    {
        long count = _unflushed; // the first piece, already in the pipe
        while (true)
        {
            _unflushed = 0;
            FlushResult result = await FlushAfterAsync(registration.WaitToSendAsync(count, _waitCanceled.Token), cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled || result.IsCompleted || _spill.Length == 0)
            {
                // Canceled: the rest waits for the next flush; completed: the reader is gone and takes nothing more.
                return result;
            }

            count = _spill.MoveTo(inner, pieceBytes);
        }
    }

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
