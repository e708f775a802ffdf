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
}
