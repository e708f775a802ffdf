using System.Buffers;
using System.IO.Pipelines;

namespace Accel.AspNetCore.Internal;

/// <summary>Counts what Kestrel consumes from a connection, for the backlog bound. No allocation of its own per read.
/// A connection found out of the fast path (its client does not use the library) has nothing to count: its reads then
/// go straight to Kestrel's pipe. Whether it is, is read (one syscall) the first time the connection waits for more
/// after it has been read from: by then its first request has been answered, and a connection that carries one request
/// and closes never pays it.</summary>
internal sealed class CountingPipeReader : PipeReader
{
    private readonly PipeReader _inner;
    private readonly AccelerationFeature _feature;
    private readonly ObservedRead<ReadResult> _pending;
    private ReadOnlySequence<byte> _buffer;
    private bool _counted; // _buffer is what the caller's current read returned
    private long _consumed;

    public CountingPipeReader(PipeReader inner, AccelerationFeature feature)
    {
        _inner = inner;
        _feature = feature;
        _pending = new ObservedRead<ReadResult>(Remember);
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        SocketRegistration registration = _feature.Registration;
        if (registration.PassesThrough)
        {
            return _inner.ReadAsync(cancellationToken);
        }

        ValueTask<ReadResult> read = _inner.ReadAsync(cancellationToken);
        if (read.IsCompletedSuccessfully)
        {
            return new ValueTask<ReadResult>(Remember(read.Result));
        }

        // Observing a read that waits costs every request of the connection a little (about a percent of a small one
        // here, measured), so a connection that is not in the fast path stops here, once it has been read from.
        if (_consumed > 0 && !registration.IsSettled && registration.IsOutOfFastPath())
        {
            return read;
        }

        // A pipe takes one read at a time (a second one throws above), so the instance is free here.
        return _pending.TryObserve(read, out ValueTask<ReadResult> observed)
            ? observed
            : throw new InvalidOperationException("A read is already pending on this connection.");
    }

    public override bool TryRead(out ReadResult result)
    {
        bool read = _inner.TryRead(out result);
        if (read && !_feature.Registration.PassesThrough)
        {
            Remember(result);
        }

        return read;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (!_counted)
        {
            _inner.AdvanceTo(consumed, examined); // a read passed straight through
            return;
        }

        long n = _buffer.Slice(_buffer.Start, consumed).Length;
        _buffer = default;
        _counted = false;
        _inner.AdvanceTo(consumed, examined);
        if (n > 0)
        {
            _consumed += n;
            _feature.OnConsumed(_consumed);
        }
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => _inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => _inner.CompleteAsync(exception);

    private ReadResult Remember(ReadResult result)
    {
        _buffer = result.Buffer;
        _counted = true;
        return result;
    }
}
