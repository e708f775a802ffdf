using Accel.Benchmarks.Paired;
using Accel.GrpcDemo;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Accel.Benchmarks.Http;

/// <summary>
/// gRPC streaming calls on a long-lived h2c connection: client streaming (uploads), server streaming (downloads) and
/// bidirectional (each chunk echoed while the client goes on writing: both directions busy at once). Each call moves
/// <see cref="CallBytes"/> in chunks of <see cref="ChunkBytes"/>, through <see cref="BenchTransferService"/>, which does
/// no work per byte. A slice repeats calls until it has lasted its length, on a connection of its own warmed by one
/// call that is not counted (as the large downloads, <see cref="PairedHttpBenchmarks"/>): MB/s one way, and the CPU time
/// of both processes per MB.
/// </summary>
internal static class GrpcStreaming
{
    public const int ChunkBytes = 64 * 1024;

    public const int CallBytes = 16 << 20;

    private const int Chunks = CallBytes / ChunkBytes;

    private static readonly Chunk Payload = new() { Data = ByteString.CopyFrom(new byte[ChunkBytes]) };

    public static PairedCase[] Cases(ModeClients clients, TimeSpan slice) =>
    [
        Case(clients, "grpc-up", "gRPC client streaming (uploads)", slice, UploadAsync),
        Case(clients, "grpc-down", "gRPC server streaming (downloads)", slice, DownloadAsync),
        Case(clients, "grpc-duplex", "gRPC bidirectional streaming (echoed as written)", slice, ExchangeAsync),
    ];

    private static PairedCase Case(ModeClients clients, string id, string kind, TimeSpan slice, Func<Transfer.TransferClient, CancellationToken, Task> call)
    {
        string title = $"{kind}, {ChunkBytes >> 10} KiB messages";
        var rate = new Metric($"{id}-rate", $"{title}, throughput", "MB/s", HigherIsBetter: true);
        var cpu = new Metric($"{id}-cpu", $"{title}, CPU per MB (both processes)", "us", HigherIsBetter: false);
        int self = Environment.ProcessId;
        return new PairedCase(rate.Title, [rate, cpu], async mode =>
        {
            HttpClient http = clients.Fresh(mode, "h2c");
            using GrpcChannel channel = GrpcChannel.ForAddress(http.BaseAddress!, new GrpcChannelOptions { HttpClient = http, DisposeHttpClient = true });
            var client = new Transfer.TransferClient(channel);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await Guarded(mode, id, call(client, limit.Token));
            ProcessCounters before = ProcessCounters.Read(self) + ProcessCounters.Read(clients.ServerPid);
            var (bytes, seconds) = await PairedHttpBenchmarks.RepeatForAsync(slice, CallBytes, () => Guarded(mode, id, call(client, limit.Token)));
            ProcessCounters used = ProcessCounters.Read(self) + ProcessCounters.Read(clients.ServerPid) - before;
            return new Dictionary<string, double>
            {
                [rate.Id] = bytes / seconds / 1e6,
                [cpu.Id] = used.CpuNs / 1000.0 / (bytes / 1e6),
            };
        });
    }

    /// <summary>A call that takes a minute has hung (each moves 16 MiB in well under a second here).</summary>
    private static async Task Guarded(string mode, string id, Task call)
    {
        try
        {
            await call;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
            throw new InvalidOperationException($"{id}, mode {mode}: a call did not finish within 60 s", e);
        }
    }

    private static async Task UploadAsync(Transfer.TransferClient client, CancellationToken ct)
    {
        using var call = client.Upload(cancellationToken: ct);
        for (int i = 0; i < Chunks; i++)
        {
            await call.RequestStream.WriteAsync(Payload, ct);
        }

        await call.RequestStream.CompleteAsync();
        Summary summary = await call;
        Expect(summary.Bytes, "upload: the server counted");
    }

    private static async Task DownloadAsync(Transfer.TransferClient client, CancellationToken ct)
    {
        using var call = client.Download(new DownloadRequest { Count = Chunks, Size = ChunkBytes }, cancellationToken: ct);
        long got = 0;
        while (await call.ResponseStream.MoveNext(ct))
        {
            got += call.ResponseStream.Current.Data.Length;
        }

        Expect(got, "download: the client read");
    }

    private static async Task ExchangeAsync(Transfer.TransferClient client, CancellationToken ct)
    {
        using var call = client.Exchange(cancellationToken: ct);
        Task writing = WriteAllAsync(call.RequestStream, ct);
        long got = 0;
        while (await call.ResponseStream.MoveNext(ct))
        {
            got += call.ResponseStream.Current.Data.Length;
        }

        await writing;
        Expect(got, "exchange: the client read back");
    }

    private static async Task WriteAllAsync(IClientStreamWriter<Chunk> stream, CancellationToken ct)
    {
        await Task.Yield(); // the reader starts at once
        for (int i = 0; i < Chunks; i++)
        {
            await stream.WriteAsync(Payload, ct);
        }

        await stream.CompleteAsync();
    }

    private static void Expect(long bytes, string what)
    {
        if (bytes != CallBytes)
        {
            throw new InvalidOperationException($"gRPC {what} {bytes} B, expected {CallBytes}");
        }
    }
}
