using Grpc.Core;

namespace Accel.GrpcDemo;

/// <summary>One call of each kind through a <see cref="Transfer.TransferClient"/>, every byte checked.</summary>
public static class TransferRun
{
    /// <summary>What a run moved, and the first thing that was wrong (null when nothing was).</summary>
    public sealed record Result(long Calls, long Bytes, string? Error);

    public static async Task<Result> RunAsync(Transfer.TransferClient client, int chunks, int size, CancellationToken ct = default)
    {
        long calls = 0, bytes = 0;
        string? error = null;
        void Check(bool ok, string what)
        {
            if (!ok)
            {
                error ??= what;
            }
        }

        // Unary.
        for (int i = 0; i < chunks; i++)
        {
            Chunk echo = await client.EchoAsync(Chunks.Make(i, size), cancellationToken: ct);
            Check(Chunks.IsValid(echo, i, size), $"unary echo {i}");
            calls++;
            bytes += 2L * size;
        }

        // Server streaming.
        using (var download = client.Download(new DownloadRequest { Count = chunks, Size = size }, cancellationToken: ct))
        {
            long i = 0;
            await foreach (Chunk chunk in download.ResponseStream.ReadAllAsync(ct))
            {
                Check(Chunks.IsValid(chunk, i++, size), $"download chunk {i - 1}");
                bytes += size;
            }

            Check(i == chunks, $"download: {i} chunks, expected {chunks}");
            calls++;
        }

        // Client streaming.
        using (var upload = client.Upload(cancellationToken: ct))
        {
            ulong expected = 0;
            for (int i = 0; i < chunks; i++)
            {
                Chunk chunk = Chunks.Make(i, size);
                expected = Chunks.Checksum(expected, chunk);
                await upload.RequestStream.WriteAsync(chunk, ct);
            }

            await upload.RequestStream.CompleteAsync();
            Summary summary = await upload;
            Check(summary.Chunks == chunks && summary.Bytes == (long)chunks * size && summary.Checksum == expected, $"upload summary {summary}");
            bytes += (long)chunks * size;
            calls++;
        }

        // Bidirectional: write and read at once.
        using (var exchange = client.Exchange(cancellationToken: ct))
        {
            Task writing = Task.Run(async () =>
            {
                for (int i = 0; i < chunks; i++)
                {
                    await exchange.RequestStream.WriteAsync(Chunks.Make(i, size), ct);
                }

                await exchange.RequestStream.CompleteAsync();
            }, ct);
            long i = 0;
            await foreach (Chunk chunk in exchange.ResponseStream.ReadAllAsync(ct))
            {
                Check(Chunks.IsValid(chunk, i++, size), $"exchange chunk {i - 1}");
                bytes += 2L * size;
            }

            await writing;
            Check(i == chunks, $"exchange: {i} chunks back, expected {chunks}");
            calls++;
        }

        return new Result(calls, bytes, error);
    }
}
