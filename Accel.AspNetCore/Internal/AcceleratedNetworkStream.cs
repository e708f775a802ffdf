using System.Diagnostics;
using System.Net.Sockets;

namespace Accel.AspNetCore.Internal;

/// <summary>Counts what the client consumes, for the backlog bound of the server's redirected responses, and
/// paces what it writes (request bodies) so that a large upload stays in the fast path. A body written in a burst
/// of large writes is sent from behind (<see cref="WriteBehind"/>), gathered into fewer sends. When the first write
/// finds no server in the fast path (a same-host server without the library), the socket leaves the map
/// (<see cref="SocketRegistration.TryLeaveFastPath"/>) and the stream passes everything straight through, as it does
/// for a socket that the same check finds was never in the map (a remote server). A
/// zero-byte read right after a read that filled its buffer completes at once (<see cref="ReadAsync(Memory{byte}, CancellationToken)"/>).
/// A send that fails because its peer has closed counts as done, as TCP's buffers take it, up to the backlog bound
/// (<see cref="SendAsync"/>).</summary>
internal sealed class AcceleratedNetworkStream : NetworkStream
{
    /// <summary>The smallest write that can start or carry on a burst: a full HTTP/2 DATA frame (16,393 B), and
    /// the pieces SocketsHttpHandler's HTTP/1.1 sends a chunked body in (4,096 B from its buffer, the rest of a
    /// write directly), are larger. Smaller writes go behind only while the loop is busy.</summary>
    private const int BulkWriteBytes = 4 * 1024;

    /// <summary>How soon after a large write another one counts as the same burst, if nothing was read between
    /// them. The first large write of a burst goes straight to the socket: a request's body in one write, after its
    /// headers and before its response is read, would gain nothing from the hop. A burst's next writes find the
    /// sending loop busy, or follow within this time; small writes between them (HTTP/1.1's chunk headers) do not
    /// end it.</summary>
    private static readonly long BurstTicks = Stopwatch.Frequency / 1000;

    /// <summary>How long a close waits for the loop to send what the stream accepted before it, if the reader
    /// does not take it.</summary>
    private static readonly TimeSpan CloseLimit = TimeSpan.FromSeconds(10);

    private readonly SocketRegistration _registration;
    private readonly long _maxChunk;
    private readonly ObservedRead<int> _pending;
    private readonly WriteBehind _behind;
    private long _read;
    private int _written;
    private long _lastBulkWrite;
    private int _asked; // the size of the last read
    private bool _filled; // whether it filled its buffer, and no zero-byte read came after it

    public AcceleratedNetworkStream(Socket socket, SocketRegistration registration, long maxChunk)
        : base(socket, ownsSocket: true)
    {
        _registration = registration;
        _maxChunk = maxChunk;
        _pending = new ObservedRead<int>(Count);
        _behind = new WriteBehind(WriteInChunksAsync, Abort, capacity: 256 * 1024);
    }

    public SocketRegistration Registration => _registration;

    // The synchronous calls: only the array overloads are overridden. For a derived type NetworkStream sends its
    // span and single-byte overloads through Stream's, which call these (so that an override of them sees every
    // call); they in turn call NetworkStream's array overloads, which go to the socket. Overriding the span
    // overloads too made Write(span) recurse through them until the stack overflowed, and counted a span read
    // twice.
    public override int Read(byte[] buffer, int offset, int count)
    {
        _asked = count;
        return Count(base.Read(buffer, offset, count));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty && _filled)
        {
            // A zero-byte read waits for data without holding a buffer: SocketsHttpHandler makes one before each read,
            // and on Linux it is a one-byte MSG_PEEK, which takes the socket's lock as the read does and as the
            // redirecting sender's every send does. HTTP/2 reads a frame at a time, so a 64 KiB message was four such
            // peeks and four reads. After a read that filled its buffer more is most likely queued, so the first
            // zero-byte read after it completes at once, as the peek would have; the caller's next read waits if
            // nothing is there after all, and a second zero-byte read in a row waits for data as before.
            _filled = false;
            return ValueTask.FromResult(0);
        }

        _asked = buffer.Length;
        ValueTask<int> read = base.ReadAsync(buffer, cancellationToken);
        if (_registration.PassesThrough)
        {
            _filled = false;
            return read;
        }

        if (read.IsCompletedSuccessfully)
        {
            return new ValueTask<int>(Count(read.Result));
        }

        // A second read while one is pending (a stream allows it; SocketsHttpHandler does not do it) gets a state
        // machine of its own.
        return _pending.TryObserve(read, out ValueTask<int> observed) ? observed : CountWhenDone(read);
    }

    private async ValueTask<int> CountWhenDone(ValueTask<int> read) => Count(await read.ConfigureAwait(false));

    public override void Write(byte[] buffer, int offset, int count)
    {
        if (_registration.PassesThrough)
        {
            base.Write(buffer, offset, count);
            return;
        }

        WaitForQueued(); // behind what an asynchronous write left queued

        bool first = Volatile.Read(ref _written) == 0 && count > 0;
        for (int end = offset + count; offset < end;)
        {
            int chunk = (int)Math.Min(end - offset, _maxChunk);
            ValueTask wait = _registration.WaitToSendAsync(chunk);
            if (!wait.IsCompletedSuccessfully)
            {
                wait.AsTask().GetAwaiter().GetResult();
            }

            try
            {
                base.Write(buffer, offset, chunk);
            }
            catch (IOException e) when (_registration.AbsorbsSendToClosedPeer(e, chunk))
            {
            }

            offset += chunk;
        }

        if (first)
        {
            AfterWrite();
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_registration.PassesThrough)
        {
            return base.WriteAsync(buffer, cancellationToken);
        }

        if (Volatile.Read(ref _written) == 0 && !buffer.IsEmpty)
        {
            return FirstWriteAsync(buffer, cancellationToken);
        }

        bool burst = InBurst(buffer.Length); // first: every large write moves the burst on
        if (burst || _behind.IsActive)
        {
            return _behind.EnqueueAsync(buffer, cancellationToken);
        }

        if (buffer.Length > _maxChunk)
        {
            return WriteInChunksAsync(buffer, cancellationToken);
        }

        ValueTask wait = _registration.WaitToSendAsync(buffer.Length, cancellationToken);
        return wait.IsCompletedSuccessfully ? SendAsync(buffer, cancellationToken) : WriteAfterAsync(wait, buffer, cancellationToken);
    }

    /// <summary>Whether this write is a large one that follows another within <see cref="BurstTicks"/>, with
    /// nothing read between them (<see cref="Count"/> ends a burst).</summary>
    private bool InBurst(int count)
    {
        if (count < BulkWriteBytes)
        {
            return false;
        }

        long now = Stopwatch.GetTimestamp(), last = _lastBulkWrite;
        _lastBulkWrite = now;
        return last != 0 && now - last < BurstTicks;
    }

    public override void Flush() => WaitForQueued();

    /// <summary>Blocks until the bytes queued behind (<see cref="WriteBehind"/>) are sent, if there are any.</summary>
    private void WaitForQueued()
    {
        if (_behind.IsActive)
        {
            _behind.DrainAsync().GetAwaiter().GetResult();
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken)
        => _behind.IsActive ? _behind.DrainAsync().WaitAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>A close sends what the stream accepted first, as TCP's does (<see cref="WriteBehind.CloseWhenDrained"/>),
    /// then counts what went in the last window (<see cref="SocketRegistration.SettleWindow"/>) before the socket closes.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing && _behind.CloseWhenDrained(() => CloseAfterSending(), CloseLimit))
        {
            return;
        }

        if (disposing)
        {
            _registration.SettleWindow();
        }

        base.Dispose(disposing);
    }

    private void CloseAfterSending()
    {
        _registration.SettleWindow();
        base.Dispose(true);
    }

    /// <summary>A queued send failed: the connection ends now, with nothing after the lost bytes.</summary>
    private void Abort() => Socket.Dispose();

    private async ValueTask FirstWriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        await WriteInChunksAsync(buffer, cancellationToken).ConfigureAwait(false);
        AfterWrite();
    }

    /// <summary>The first write decided the socket's path in the kernel; a socket whose server is not in the fast
    /// path leaves it now, before it reads the response: in the map, its reads would go through tcp_bpf's receive path,
    /// which cost a 256 KiB response on a connection of its own 3 to 4% when this check waited for the second write.
    /// The check's one read of the socket's state also settles its registration.</summary>
    private void AfterWrite()
    {
        if (Interlocked.Exchange(ref _written, 1) == 0)
        {
            _registration.TryLeaveFastPath();
        }
    }

    private async ValueTask WriteAfterAsync(ValueTask wait, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        await wait.ConfigureAwait(false);
        await SendAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Hands <paramref name="buffer"/> to the socket. A send that fails only because its peer has closed counts as
    /// done, as on TCP (<see cref="SocketRegistration.AbsorbsSendToClosedPeer"/>): the caller reads what the peer sent
    /// before it closed, and then the end of the connection.</summary>
    private ValueTask SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        ValueTask send = base.WriteAsync(buffer, cancellationToken);
        return send.IsCompletedSuccessfully ? send : SendOrAbsorbAsync(send, buffer.Length);
    }

    private async ValueTask SendOrAbsorbAsync(ValueTask send, int count)
    {
        try
        {
            await send.ConfigureAwait(false);
        }
        catch (IOException e) when (_registration.AbsorbsSendToClosedPeer(e, count))
        {
        }
    }

    /// <summary>A write the reader could never make room for at once goes in pieces, each paced.</summary>
    private async ValueTask WriteInChunksAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            ReadOnlyMemory<byte> chunk = buffer[..(int)Math.Min(buffer.Length, _maxChunk)];
            await _registration.WaitToSendAsync(chunk.Length, cancellationToken).ConfigureAwait(false);
            await SendAsync(chunk, cancellationToken).ConfigureAwait(false);
            buffer = buffer[chunk.Length..];
        }
    }

    private int Count(int n)
    {
        _filled = n > 0 && n == _asked;
        if (n > 0)
        {
            _lastBulkWrite = 0; // a response came: the next large write starts a new burst
            _read += n;
            _registration.ReportConsumed(_read);
        }

        return n;
    }
}
