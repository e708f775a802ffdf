namespace Accel.Testing;

/// <summary>The test body: byte i of a body is a function of i, so any lost, repeated or reordered byte shows.</summary>
public static class Pattern
{
    public static byte At(long i) => (byte)((i * 31) ^ (i >> 8) ^ (i >> 16));

    public static async Task WriteAsync(Stream stream, long length, CancellationToken ct, Action<long>? progress = null)
    {
        byte[] chunk = new byte[16 * 1024];
        for (long offset = 0; offset < length;)
        {
            int n = (int)Math.Min(chunk.Length, length - offset);
            for (int i = 0; i < n; i++)
            {
                chunk[i] = At(offset + i);
            }

            await stream.WriteAsync(chunk.AsMemory(0, n), ct);
            offset += n;
            progress?.Invoke(offset);
        }
    }

    /// <summary>Null when the stream is exactly the pattern of <paramref name="length"/> bytes.</summary>
    public static async Task<string?> VerifyAsync(Stream stream, long length, CancellationToken ct)
    {
        byte[] buffer = new byte[64 * 1024];
        long offset = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer, ct)) > 0)
        {
            for (int i = 0; i < n; i++, offset++)
            {
                if (offset >= length)
                {
                    return $"more than {length} bytes";
                }

                if (buffer[i] != At(offset))
                {
                    return $"byte {offset} is 0x{buffer[i]:x2}, expected 0x{At(offset):x2}";
                }
            }
        }

        return offset == length ? null : $"{offset} bytes, expected {length}";
    }

    /// <summary>A request body that streams the pattern; sent chunked (no Content-Length) unless <paramref name="knownLength"/>.</summary>
    public sealed class Content(long length, bool knownLength = true, Action<long>? progress = null) : System.Net.Http.HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => WriteAsync(stream, length, default, progress);

        protected override bool TryComputeLength(out long l)
        {
            l = length;
            return knownLength;
        }
    }

    /// <summary>
    /// A fast body for large transfers: a fixed random 1 MiB block, repeated, with each repetition's index in its first
    /// 8 bytes. Written in 64 KiB pieces and checked with vectorised compares, so that a test can move gigabytes and
    /// still check every byte: a lost, repeated or reordered piece breaks the block or its index.
    /// </summary>
    public static class Blocks
    {
        public const int Size = 1 << 20;
        private static readonly byte[] Block = MakeBlock();

        public static async Task WriteAsync(Stream stream, long length, CancellationToken ct)
        {
            byte[] piece = new byte[64 * 1024];
            for (long offset = 0; offset < length;)
            {
                int n = (int)Math.Min(piece.Length, length - offset);
                Expected(offset, piece.AsSpan(0, n));
                await stream.WriteAsync(piece.AsMemory(0, n), ct);
                offset += n;
            }
        }

        /// <summary>Null when the stream is exactly <paramref name="length"/> bytes of blocks.</summary>
        public static async Task<string?> VerifyAsync(Stream stream, long length, CancellationToken ct)
        {
            byte[] buffer = new byte[256 * 1024];
            byte[] expected = new byte[buffer.Length];
            long offset = 0;
            int n;
            while ((n = await stream.ReadAsync(buffer, ct)) > 0)
            {
                if (offset + n > length)
                {
                    return $"more than {length} bytes";
                }

                Expected(offset, expected.AsSpan(0, n));
                if (!buffer.AsSpan(0, n).SequenceEqual(expected.AsSpan(0, n)))
                {
                    int at = buffer.AsSpan(0, n).CommonPrefixLength(expected.AsSpan(0, n));
                    return $"byte {offset + at} is 0x{buffer[at]:x2}, expected 0x{expected[at]:x2}";
                }

                offset += n;
            }

            return offset == length ? null : $"{offset} bytes, expected {length}";
        }

        /// <summary>The bytes at <paramref name="offset"/> of a body, into <paramref name="into"/>.</summary>
        private static void Expected(long offset, Span<byte> into)
        {
            Span<byte> stamp = stackalloc byte[8];
            while (!into.IsEmpty)
            {
                long index = offset / Size;
                int at = (int)(offset % Size);
                int n = Math.Min(into.Length, Size - at);
                Block.AsSpan(at, n).CopyTo(into);
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(stamp, index);
                for (int i = at; i < 8 && i - at < n; i++)
                {
                    into[i - at] = stamp[i];
                }

                into = into[n..];
                offset += n;
            }
        }

        private static byte[] MakeBlock()
        {
            byte[] block = new byte[Size];
            new Random(20261129).NextBytes(block);
            return block;
        }
    }
}
