using System.Buffers.Binary;
using System.Net.Sockets;

namespace Accel.Tests.Infrastructure;

/// <summary>A long stream of consecutive little-endian 64-bit counters: cheap to write and to check at
/// gigabyte sizes, and any lost, repeated or reordered byte shows at its first position.</summary>
public static class CounterStream
{
    /// <summary>Writes <paramref name="totalBytes"/>; with <paramref name="window"/>, waits (as a flow-controlled
    /// protocol such as HTTP/2 does) whenever more than that is written but not yet read by the peer; with
    /// <paramref name="pacer"/>, paces each chunk (<see cref="SocketRegistration.WaitToSendAsync"/>);
    /// <paramref name="written"/> follows the progress; <paramref name="nextSize"/> gives each write's size (at most
    /// <paramref name="chunk"/>) instead of <paramref name="chunk"/>.</summary>
    public static async Task WriteAsync(Socket socket, long totalBytes, int chunk, CancellationToken ct, long window = 0, Func<long>? peerConsumed = null,
        SocketRegistration? pacer = null, Action<long>? written = null, Func<int>? nextSize = null)
    {
        byte[] buffer = new byte[chunk];
        for (long offset = 0; offset < totalBytes;)
        {
            while (window > 0 && offset - peerConsumed!() >= window)
            {
                await Task.Delay(1, ct);
            }

            int n = (int)Math.Min(nextSize is null ? chunk : Math.Min(chunk, nextSize()), totalBytes - offset);
            Fill(buffer.AsSpan(0, n), offset);
            if (pacer is not null)
            {
                await pacer.WaitToSendAsync(n, ct);
            }

            int sent = 0;
            while (sent < n)
            {
                sent += await socket.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, ct);
            }

            offset += n;
            written?.Invoke(offset);
        }
    }

    /// <summary>Reads <paramref name="totalBytes"/>, pausing once as <paramref name="pause"/> says; returns null
    /// when every byte matched, else the first mismatch.</summary>
    public static async Task<string?> VerifyAsync(Socket socket, long totalBytes, Func<long, Task>? pause, CancellationToken ct, Action<long>? consumed = null)
    {
        byte[] buffer = new byte[256 * 1024];
        byte[] expected = new byte[buffer.Length];
        long offset = 0;
        while (offset < totalBytes)
        {
            if (pause is not null)
            {
                await pause(offset);
            }

            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0)
            {
                return $"EOF after {offset} of {totalBytes} bytes";
            }

            Fill(expected.AsSpan(0, n), offset);
            int diff = buffer.AsSpan(0, n).CommonPrefixLength(expected.AsSpan(0, n));
            if (diff < n)
            {
                return $"byte {offset + diff} is 0x{buffer[diff]:x2}, expected 0x{expected[diff]:x2}";
            }

            offset += n;
            consumed?.Invoke(offset);
        }

        return null;
    }

    private static void Fill(Span<byte> span, long offset)
    {
        Span<byte> word = stackalloc byte[8];
        for (int i = 0; i < span.Length;)
        {
            long o = offset + i;
            BinaryPrimitives.WriteInt64LittleEndian(word, o / 8);
            int inWord = (int)(o % 8);
            int take = Math.Min(8 - inWord, span.Length - i);
            word.Slice(inWord, take).CopyTo(span[i..]);
            i += take;
        }
    }
}
