using Accel.AspNetCore.Internal;
using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// The HttpClient stream's queue of accepted, unsent bytes, over a recording send: every byte reaches the send once
/// and in order, however the writes and the sends interleave; a failed send lets nothing after it through; a close
/// sends what was accepted first. The sends here are a stand-in for the socket, for the interleavings and failures a
/// kernel does not produce on demand; over real sockets, h2c and HTTP/1.1 uploads are checked byte for byte in
/// <see cref="LargeBodyTests"/>.
/// </summary>
public sealed class WriteBehindTests
{
    [Theory]
    [InlineData(1, 64)]
    [InlineData(2, 1000)]
    [InlineData(3, 100_000)]
    public async Task Every_byte_reaches_the_send_once_and_in_order_whatever_the_sizes_and_timing(int seed, int capacity)
    {
        var random = new Random(seed);
        var sendDelays = new Random(seed + 1); // the loop's own: one send at a time, but not on the test's thread
        var sent = new MemoryStream();
        var behind = new WriteBehind(async (bytes, _) =>
        {
            switch (sendDelays.Next(40))
            {
                case 0:
                    await Task.Delay(1); // long enough for the writer to fill the buffer and wait for room
                    break;
                case < 20:
                    await Task.Yield();
                    break;
            }

            sent.Write(bytes.Span); // one send at a time: the loop awaits each
        }, () => throw new InvalidOperationException("no send fails here"), capacity);

        long total = 0;
        for (int write = 0; write < 1000; write++)
        {
            int n = random.Next(5) switch { 0 => 1, 1 => random.Next(1, 100), 2 => capacity, 3 => capacity + 1, _ => random.Next(1, 3 * capacity) };
            await behind.EnqueueAsync(Bytes(total, n), CancellationToken.None);
            total += n;
            if (random.Next(50) == 0)
            {
                await behind.DrainAsync();
                Assert.False(behind.IsActive);
                Assert.Equal(total, sent.Length);
            }
        }

        await behind.DrainAsync();
        Assert.Equal(total, sent.Length);
        Assert.Equal(Bytes(0, (int)total).ToArray(), sent.ToArray());
    }

    [Fact]
    public async Task A_failed_send_fails_the_next_write_and_the_drain_aborts_the_connection_and_sends_nothing_after_it()
    {
        var firstSend = new TaskCompletionSource();
        var sent = new List<byte>();
        int aborts = 0, sends = 0;
        var behind = new WriteBehind(async (bytes, _) =>
        {
            if (sends++ == 0)
            {
                await firstSend.Task; // the writes below queue behind this send, which then fails
                throw new IOException("Connection reset by peer");
            }

            sent.AddRange(bytes.ToArray());
        }, () => Interlocked.Increment(ref aborts), 1000);

        await behind.EnqueueAsync(Bytes(0, 10), CancellationToken.None);
        await behind.EnqueueAsync(Bytes(10, 10), CancellationToken.None);
        Task drained = behind.DrainAsync();
        firstSend.SetResult();

        var drainError = await Assert.ThrowsAsync<IOException>(() => drained);
        Assert.Contains("Connection reset by peer", drainError.Message);
        var writeError = await Assert.ThrowsAsync<IOException>(async () => await behind.EnqueueAsync(Bytes(20, 10), CancellationToken.None));
        Assert.IsType<IOException>(writeError.InnerException);
        Assert.Empty(sent);
        Assert.Equal(1, aborts);
        Assert.False(behind.IsActive);
    }

    [Fact]
    public async Task A_close_sends_what_was_accepted_first_and_then_closes()
    {
        var release = new TaskCompletionSource();
        var sent = new MemoryStream();
        var closed = new TaskCompletionSource<long>();
        var behind = new WriteBehind(async (bytes, _) =>
        {
            await release.Task; // every send waits until the stream is closed
            sent.Write(bytes.Span);
        }, () => throw new InvalidOperationException("no send fails here"), 128);

        await behind.EnqueueAsync(Bytes(0, 128), CancellationToken.None);
        await behind.EnqueueAsync(Bytes(128, 100), CancellationToken.None);
        Assert.True(behind.CloseWhenDrained(() => closed.SetResult(sent.Length), TimeSpan.FromSeconds(30)));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await behind.EnqueueAsync(Bytes(228, 1), CancellationToken.None));
        Assert.False(closed.Task.IsCompleted);

        release.SetResult();
        Assert.Equal(228, await closed.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(Bytes(0, 228).ToArray(), sent.ToArray());
    }

    [Fact]
    public void A_close_with_nothing_queued_is_left_to_the_caller()
    {
        var behind = new WriteBehind((_, _) => ValueTask.CompletedTask, () => { }, 100);
        Assert.False(behind.CloseWhenDrained(() => throw new InvalidOperationException("the caller closes"), TimeSpan.FromSeconds(1)));
        Assert.Throws<ObjectDisposedException>(() => behind.EnqueueAsync(Bytes(0, 1), CancellationToken.None).AsTask().GetAwaiter().GetResult());
    }

    [Fact]
    public async Task A_close_whose_bytes_the_reader_never_takes_closes_after_its_limit()
    {
        int closes = 0;
        var behind = new WriteBehind(async (_, ct) => await Task.Delay(Timeout.Infinite, ct), () => throw new InvalidOperationException("the close, not the abort"), 100);
        await behind.EnqueueAsync(Bytes(0, 10), CancellationToken.None);
        var closed = new TaskCompletionSource();
        Assert.True(behind.CloseWhenDrained(() =>
        {
            Interlocked.Increment(ref closes);
            closed.SetResult();
        }, TimeSpan.FromMilliseconds(50)));

        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, closes);
        var error = await Assert.ThrowsAsync<IOException>(() => behind.DrainAsync());
        Assert.IsAssignableFrom<OperationCanceledException>(error.InnerException);
    }

    [Fact]
    public async Task A_write_waiting_for_room_can_be_canceled()
    {
        var release = new TaskCompletionSource();
        var behind = new WriteBehind(async (_, _) => await release.Task, () => { }, 128);
        await behind.EnqueueAsync(Bytes(0, 128), CancellationToken.None); // the loop takes these and waits
        await behind.EnqueueAsync(Bytes(128, 128), CancellationToken.None); // these fill the buffer
        using var cts = new CancellationTokenSource();
        Task blocked = behind.EnqueueAsync(Bytes(256, 1), cts.Token).AsTask();
        Assert.False(blocked.IsCompleted);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked);
        release.SetResult();
        await behind.DrainAsync();
    }

    private static ReadOnlyMemory<byte> Bytes(long from, int count)
    {
        byte[] bytes = new byte[count];
        for (int i = 0; i < count; i++)
        {
            bytes[i] = Pattern.At(from + i);
        }

        return bytes;
    }
}
