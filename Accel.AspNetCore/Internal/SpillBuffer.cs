using System.Buffers;
using System.IO.Pipelines;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// The bytes of one flush beyond what <see cref="PacingPipeWriter"/> lets into Kestrel's pipe at once, in the order they
/// were written, until it moves them on a piece at a time: in pooled arrays, each returned once drained, all of them
/// once the buffer is empty.
/// </summary>
internal sealed class SpillBuffer
{
    private const int SegmentSize = 256 * 1024;
    private readonly Queue<Segment> _segments = new(); // oldest first; the last one is written to
    private Segment? _tail;

    /// <summary>Bytes held.</summary>
    public long Length { get; private set; }

    public Memory<byte> GetMemory(int sizeHint)
    {
        int needed = Math.Max(sizeHint, 1);
        if (_tail is null || _tail.Array.Length - _tail.End < needed)
        {
            _tail = new Segment(ArrayPool<byte>.Shared.Rent(Math.Max(needed, SegmentSize)));
            _segments.Enqueue(_tail);
        }

        return _tail.Array.AsMemory(_tail.End);
    }

    public void Advance(int bytes)
    {
        if (_tail is null || bytes < 0 || bytes > _tail.Array.Length - _tail.End)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "Advanced past the memory that GetMemory or GetSpan returned.");
        }

        _tail.End += bytes;
        Length += bytes;
    }

    /// <summary>Writes up to <paramref name="max"/> of the oldest bytes to <paramref name="target"/> (without flushing
    /// it) and forgets them; the count written.</summary>
    public long MoveTo(PipeWriter target, long max)
    {
        long moved = 0;
        while (moved < max && Length > 0)
        {
            Segment head = _segments.Peek();
            int n = (int)Math.Min(max - moved, head.End - head.Start);
            target.Write(head.Array.AsSpan(head.Start, n));
            head.Start += n;
            Length -= n;
            moved += n;
            if (head.Start == head.End && head != _tail)
            {
                ArrayPool<byte>.Shared.Return(_segments.Dequeue().Array);
            }
        }

        if (Length == 0)
        {
            Clear(); // an idle connection holds no array
        }

        return moved;
    }

    /// <summary>Drops what is held and returns every array to the pool.</summary>
    public void Clear()
    {
        while (_segments.TryDequeue(out Segment? segment))
        {
            ArrayPool<byte>.Shared.Return(segment.Array);
        }

        _tail = null;
        Length = 0;
    }

    private sealed class Segment(byte[] array)
    {
        public byte[] Array { get; } = array;

        public int Start { get; set; }

        public int End { get; set; }
    }
}
