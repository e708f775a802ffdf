using System.Buffers.Binary;
using System.Net.Sockets;

namespace Accel.Testing;

/// <summary>
/// A deterministic stream of messages for one direction of one connection: message k has a length drawn
/// from the seed and bytes that depend on (seed, k, position), beginning with k itself. A reader that
/// regenerates the stream detects any lost, duplicated, reordered or foreign byte at its first position.
/// </summary>
public sealed class SequencedStream(ulong seed, int messages, int maxMessageSize)
{
    public ulong Seed { get; } = seed;

    public long TotalBytes => Lengths().Sum(l => (long)l);

    public IEnumerable<int> Lengths()
    {
        ulong state = Seed * 0x9E3779B97F4A7C15UL | 1;
        for (int k = 0; k < messages; k++)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            yield return 1 + (int)(state % (ulong)maxMessageSize);
        }
    }

    public void Fill(int k, Span<byte> message, long offsetInMessage = 0)
    {
        for (int j = 0; j < message.Length; j++)
        {
            message[j] = ByteAt(k, offsetInMessage + j);
        }
    }

    public byte ByteAt(int k, long j)
    {
        if (j < 4)
        {
            Span<byte> head = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(head, k);
            return head[(int)j];
        }

        return (byte)((ulong)k * 131 + (ulong)j * 7 + Seed * 29);
    }

    /// <summary>Sends every message with its own send call, as fast as the socket takes them (after
    /// <paramref name="beforeSend"/>, a writer's pacing, if any), then waits for <paramref name="beforeShutdown"/>
    /// (if any) and shuts the sending side down.</summary>
    public async Task WriteAsync(Socket socket, Func<Task>? beforeShutdown = null, CancellationToken ct = default, Func<int, ValueTask>? beforeSend = null)
    {
        int k = 0;
        byte[] buffer = new byte[maxMessageSize];
        foreach (int length in Lengths())
        {
            Fill(k, buffer.AsSpan(0, length));
            if (beforeSend is not null)
            {
                await beforeSend(length);
            }

            int sent = 0;
            while (sent < length)
            {
                sent += await socket.SendAsync(buffer.AsMemory(sent, length - sent), SocketFlags.None, ct);
            }

            k++;
        }

        if (beforeShutdown is not null)
        {
            await beforeShutdown();
        }

        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Reads the whole stream and then EOF; returns null when every byte matched, else what went wrong.
    /// <paramref name="allRead"/> completes once every expected byte has arrived (before EOF).</summary>
    public async Task<string?> VerifyAsync(Socket socket, TaskCompletionSource? allRead = null, CancellationToken ct = default, Action<long>? consumed = null)
    {
        byte[] buffer = new byte[64 * 1024];
        using IEnumerator<int> lengths = Lengths().GetEnumerator();
        int k = -1;
        int length = 0;
        long pos = 0; // position within message k
        long total = 0;
        bool more = Advance();

        bool Advance()
        {
            while (lengths.MoveNext())
            {
                k++;
                length = lengths.Current;
                pos = 0;
                return true;
            }

            return false;
        }

        while (true)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0)
            {
                return more ? $"EOF after {total} bytes, in message {k} at {pos}" : null;
            }

            consumed?.Invoke(total + n);

            for (int i = 0; i < n; i++)
            {
                if (!more)
                {
                    return $"{n - i} bytes past the end of the stream ({total} expected)";
                }

                byte expected = ByteAt(k, pos);
                if (buffer[i] != expected)
                {
                    return $"byte {total} (message {k}, offset {pos}) is 0x{buffer[i]:x2}, expected 0x{expected:x2}";
                }

                total++;
                if (++pos == length)
                {
                    more = Advance();
                    if (!more)
                    {
                        allRead?.TrySetResult();
                    }
                }
            }
        }
    }

    /// <summary>The seed of a direction, from the client's port that both ends know.</summary>
    public static ulong SeedFor(int clientPort, bool clientToServer) => ((ulong)clientPort << 1) | (clientToServer ? 1UL : 0UL);
}
