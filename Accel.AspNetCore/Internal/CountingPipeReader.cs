using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace Accel.AspNetCore.Internal;

/// <summary>Counts what Kestrel consumes from a connection, for the backlog bound. No allocation per read.</summary>
internal sealed class CountingPipeReader(PipeReader inner, AccelerationFeature feature) : PipeReader
{
    private ReadOnlySequence<byte> _buffer;
    private long _consumed;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<ReadResult> read = inner.ReadAsync(cancellationToken);
        if (read.IsCompletedSuccessfully)
        {
            ReadResult result = read.Result;
            _buffer = result.Buffer;
            return new ValueTask<ReadResult>(result);
        }

        return Remember(read);
    }

    public override bool TryRead(out ReadResult result)
    {
        bool read = inner.TryRead(out result);
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
        inner.AdvanceTo(consumed, examined);
        if (n > 0)
        {
            _consumed += n;
            feature.OnConsumed(_consumed);
        }
    }

    public override void CancelPendingRead() => inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

    // Kestrel's next read on an idle connection is the pending one: a pooled box, not an allocation per request.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> Remember(ValueTask<ReadResult> pending)
    {
        ReadResult result = await pending.ConfigureAwait(false);
        _buffer = result.Buffer;
        return result;
    }
}
