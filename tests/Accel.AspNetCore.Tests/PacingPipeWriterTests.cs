using System.IO.Pipelines;
using System.Net.Sockets;
using Accel.AspNetCore.Internal;
using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// The transport's output writer over a real pipe: bytes written past a flush's piece wait in its spill buffer and
/// reach the pipe in order, whatever mix of GetMemory, GetSpan and Advance wrote them, also when a flush is canceled
/// or the writer completes without one; a connection out of the fast path does not spill. (Its pacing against a real
/// reader, and a body written in one piece staying in the fast path, are in <see cref="LargeBodyTests"/>.)
/// </summary>
public sealed class PacingPipeWriterTests : IDisposable
{
    private const int Piece = 1000;
    private readonly AccelerationEngine _engine = AccelerationEngine.Start(new AccelerationEngineOptions { Enabled = false });
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    /// <summary>A registration that says its socket is in the fast path; with acceleration off, its pacing never waits, so
    /// these tests see the spill buffer alone.</summary>
    private SocketRegistration InFastPath() => new(_engine, _socket, new Accel.Internal.JoinResult(RegistrationOutcome.Registered, null));

    public void Dispose()
    {
        _socket.Dispose();
        _engine.Dispose();
    }

    [Fact]
    public async Task Bytes_written_past_a_piece_reach_the_pipe_in_order_over_several_flushes()
    {
        var random = new Random(5);
        for (int round = 0; round < 50; round++)
        {
            var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
            var writer = new PacingPipeWriter(pipe.Writer, InFastPath(), Piece);
            long total = 0;
            for (int flush = 0; flush < 5; flush++)
            {
                long target = total + random.Next(0, 12 * Piece);
                while (total < target)
                {
                    total += WriteSome(writer, random, total, target);
                }

                FlushResult result = await writer.FlushAsync();
                Assert.False(result.IsCanceled);
                Assert.Equal(0, writer.UnflushedBytes);
            }

            await writer.CompleteAsync();
            Assert.Null(await VerifyAsync(pipe.Reader, total));
        }
    }

    [Fact]
    public async Task A_canceled_flush_keeps_the_rest_for_the_next_one()
    {
        var (pipe, writer, total) = await CancelFirstFlushAsync(InFastPath());
        Assert.True(writer.UnflushedBytes > 0, "nothing was left for the next flush");

        Task<string?> verify = VerifyAsync(pipe.Reader, total);
        Assert.False((await writer.FlushAsync()).IsCanceled);
        await writer.CompleteAsync();
        Assert.Null(await verify);
    }

    [Fact]
    public async Task A_connection_out_of_the_fast_path_puts_its_bytes_straight_into_the_pipe()
    {
        // A connection that is not in the fast path (acceleration off here; a client without the library in a service)
        // has nothing to pace, so nothing is held back for the next flush.
        var (pipe, writer, total) = await CancelFirstFlushAsync(_engine.Register(_socket));
        Assert.Equal(0, writer.UnflushedBytes);

        Task<string?> verify = VerifyAsync(pipe.Reader, total);
        await writer.CompleteAsync();
        Assert.Null(await verify);
    }

    /// <summary>Ten pieces and a bit written, over a pipe that holds its flushes until read: the first flush waits, and
    /// is canceled.</summary>
    private static async Task<(Pipe Pipe, PacingPipeWriter Writer, long Total)> CancelFirstFlushAsync(SocketRegistration registration)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: Piece / 2, resumeWriterThreshold: 1));
        var writer = new PacingPipeWriter(pipe.Writer, registration, Piece);
        long total = 10 * Piece + 7;
        WriteAll(writer, total);
        ValueTask<FlushResult> flush = writer.FlushAsync();
        Assert.False(flush.IsCompleted);
        writer.CancelPendingFlush();
        Assert.True((await flush).IsCanceled);
        return (pipe, writer, total);
    }

    [Fact]
    public async Task Completing_without_a_flush_sends_what_was_spilled()
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        var writer = new PacingPipeWriter(pipe.Writer, InFastPath(), Piece);
        long total = 5 * Piece + 3;
        WriteAll(writer, total);
        writer.Complete();
        Assert.Null(await VerifyAsync(pipe.Reader, total));
    }

    /// <summary>Writes the pattern from <paramref name="offset"/> through one GetMemory or GetSpan (with a random size
    /// hint) and one Advance, up to <paramref name="end"/>; the count written.</summary>
    private static int WriteSome(PipeWriter writer, Random random, long offset, long end)
    {
        int hint = random.Next(3) switch { 0 => 0, 1 => random.Next(1, 64), _ => random.Next(1, 3 * Piece) };
        Span<byte> span = random.Next(2) == 0 ? writer.GetMemory(hint).Span : writer.GetSpan(hint);
        Assert.True(span.Length >= Math.Max(hint, 1));
        int n = (int)Math.Min(Math.Min(span.Length, random.Next(1, 2 * Piece)), end - offset);
        for (int i = 0; i < n; i++)
        {
            span[i] = Pattern.At(offset + i);
        }

        writer.Advance(n);
        return n;
    }

    private static void WriteAll(PipeWriter writer, long total)
    {
        var random = new Random(9);
        for (long written = 0; written < total;)
        {
            written += WriteSome(writer, random, written, total);
        }
    }

    private static async Task<string?> VerifyAsync(PipeReader reader, long length)
    {
        long offset = 0;
        while (true)
        {
            ReadResult result = await reader.ReadAsync();
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                for (int i = 0; i < segment.Length; i++, offset++)
                {
                    if (offset >= length || segment.Span[i] != Pattern.At(offset))
                    {
                        return offset >= length ? $"more than {length} bytes" : $"byte {offset} is wrong";
                    }
                }
            }

            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return offset == length ? null : $"{offset} bytes of {length}";
            }
        }
    }
}
