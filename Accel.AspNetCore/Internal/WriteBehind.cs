using System.Buffers;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// Bytes a stream has accepted but not yet sent, and the one loop that sends them in order, each time all that has
/// gathered meanwhile in one call (as Kestrel's own output does). A redirected send costs the receiving socket's lock
/// and a wake-up of its reader on every call, whatever its size, so a body sent in many small calls moves more slowly
/// than through TCP: SocketsHttpHandler sends each 16 KiB HTTP/2 DATA frame in a call of its own, and an h2c upload
/// ran at 0.8 of TCP's rate. Gathered, the same bytes take a few calls.
/// </summary>
/// <remarks>
/// A write returns once its bytes are copied here, and waits only while the buffer is full. A failed send fails
/// every later write and <see cref="DrainAsync"/>, and aborts the connection at once (<c>abort</c>): the bytes after
/// a lost piece must never reach the peer. <see cref="CloseWhenDrained"/> is the stream's close: like TCP's, it sends
/// what was accepted before the connection closes.
/// </remarks>
internal sealed class WriteBehind(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> send, Action abort, int capacity)
{
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _deadline = new();
    private byte[]? _filling;
    private byte[]? _spare;
    private int _filled;
    private bool _sending;
    private Exception? _error;
    private Action? _close;
    private TaskCompletionSource? _room;
    private TaskCompletionSource? _drained;

    /// <summary>Whether bytes are queued or being sent: every write that finds it so must come here, to stay behind
    /// them.</summary>
    public bool IsActive => Volatile.Read(ref _sending);

    /// <summary>Copies <paramref name="data"/> into the buffer, starting the loop if it is idle.</summary>
    public async ValueTask EnqueueAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            Task? full = null;
            bool start = false;
            lock (_gate)
            {
                ThrowIfStopped();
                _filling ??= ArrayPool<byte>.Shared.Rent(capacity);
                int n = Math.Min(_filling.Length - _filled, data.Length);
                if (n == 0)
                {
                    full = (_room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                }
                else
                {
                    data.Span[..n].CopyTo(_filling.AsSpan(_filled));
                    _filled += n;
                    data = data[n..];
                    start = !_sending;
                    _sending = true;
                }
            }

            if (start)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static self => _ = self.SendLoopAsync(), this, preferLocal: false);
            }

            if (full is not null)
            {
                await full.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Completes when every byte accepted so far has been sent; throws if a send failed.</summary>
    public Task DrainAsync()
    {
        lock (_gate)
        {
            if (_error is not null)
            {
                return Task.FromException(Failed());
            }

            return _sending ? (_drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task : Task.CompletedTask;
        }
    }

    /// <summary>The stream is being closed. False if nothing is queued (the caller closes now); otherwise the loop
    /// sends what is queued and then calls <paramref name="close"/>, or calls it after <paramref name="limit"/> if the
    /// reader has not taken the bytes by then (what TCP's close does with a send queue is much the same).</summary>
    public bool CloseWhenDrained(Action close, TimeSpan limit)
    {
        lock (_gate)
        {
            _error ??= new ObjectDisposedException(nameof(WriteBehind), "The stream was closed.");
            if (!_sending)
            {
                return false;
            }

            _close = close;
        }

        _deadline.CancelAfter(limit);
        return true;
    }

    private async Task SendLoopAsync()
    {
        while (true)
        {
            byte[]? batch;
            int count;
            TaskCompletionSource? room, drained = null;
            Action? close = null;
            lock (_gate)
            {
                room = _room;
                _room = null;
                batch = _filling;
                count = _filled;
                if (count == 0)
                {
                    _sending = false;
                    (drained, _drained, close, _close) = (_drained, null, _close, null);
                    Return(ref _filling);
                    Return(ref _spare);
                }
                else
                {
                    (_filling, _spare, _filled) = (_spare, null, 0);
                }
            }

            room?.TrySetResult();
            if (count == 0 || batch is null)
            {
                drained?.TrySetResult();
                close?.Invoke();
                return;
            }

            try
            {
                await send(batch.AsMemory(0, count), _deadline.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Stop(e, batch);
                return;
            }

            lock (_gate)
            {
                _spare = batch;
            }
        }
    }

    /// <summary>A send failed: what follows it must never be sent, so every later write fails and the connection
    /// goes.</summary>
    private void Stop(Exception e, byte[] batch)
    {
        TaskCompletionSource? room, drained;
        Action? close;
        lock (_gate)
        {
            if (_error is null or ObjectDisposedException)
            {
                _error = e;
            }

            _sending = false;
            (room, drained, close) = (_room, _drained, _close);
            (_room, _drained, _close) = (null, null, null);
            Return(ref _filling); // _spare is empty while a batch is out
        }

        ArrayPool<byte>.Shared.Return(batch);

        room?.TrySetException(Failed());
        drained?.TrySetException(Failed());
        (close ?? abort)();
    }

    private void ThrowIfStopped()
    {
        if (_error is not null)
        {
            throw Failed();
        }
    }

    private Exception Failed() => _error is ObjectDisposedException disposed
        ? disposed
        : new IOException("An earlier write on this connection failed to send; the connection was closed: " + _error!.Message, _error);

    private static void Return(ref byte[]? buffer)
    {
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null;
        }
    }
}
