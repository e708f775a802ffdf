using System.Buffers;
using System.IO.Pipelines;

namespace Accel.AspNetCore.Internal;

/// <summary>Counts what Kestrel consumes from a connection, for the backlog bound. No allocation of its own per read.</summary>
internal sealed class CountingPipeReader : PipeReader
{
    private readonly PipeReader _inner;
    private readonly AccelerationFeature _feature;
    private readonly ObservedRead<ReadResult> _pending;
    private ReadOnlySequence<byte> _buffer;
    private long _consumed;

    public CountingPipeReader(PipeReader inner, AccelerationFeature feature)
    {
        _inner = inner;
        _feature = feature;
        _pending = new ObservedRead<ReadResult>(Remember);
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<ReadResult> read = _inner.ReadAsync(cancellationToken);
        if (read.IsCompletedSuccessfully)
        {
            return new ValueTask<ReadResult>(Remember(read.Result));
        }

        // A pipe takes one read at a time (a second one throws above), so the instance is free here.
        return _pending.TryObserve(read, out ValueTask<ReadResult> observed)
            ? observed
            : throw new InvalidOperationException("A read is already pending on this connection.");
    }

    public override bool TryRead(out ReadResult result)
    {
        bool read = _inner.TryRead(out result);
        if (read)
        {
            _buffer = result.Buffer;
        }

        return read;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        long n = _buffer.Slice(_buffer.Start, consumed).Length;
        _buffer = default;
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
        return result;
    }
}
