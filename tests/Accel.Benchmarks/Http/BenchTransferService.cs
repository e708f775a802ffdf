using Accel.GrpcDemo;
using Google.Protobuf;
using Grpc.Core;

namespace Accel.Benchmarks.Http;

/// <summary>
/// The gRPC example's Transfer contract with no work per byte, for measuring what carries the bytes: the example's
/// service makes every downloaded chunk byte by byte and checksums every uploaded one (about 1 ns a byte, as much as
/// the connection itself costs at these rates). Echo and Exchange answer with what came, as the example's do;
/// Download sends one prepared chunk <c>count</c> times; Upload counts chunks and bytes.
/// </summary>
internal sealed class BenchTransferService : Transfer.TransferBase
{
    public override Task<Chunk> Echo(Chunk request, ServerCallContext context) => Task.FromResult(request);

    public override async Task Download(DownloadRequest request, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
    {
        var chunk = new Chunk { Data = ByteString.CopyFrom(new byte[request.Size]) };
        for (int i = 0; i < request.Count; i++)
        {
            await responseStream.WriteAsync(chunk, context.CancellationToken);
        }
    }

    public override async Task<Summary> Upload(IAsyncStreamReader<Chunk> requestStream, ServerCallContext context)
    {
        var summary = new Summary();
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            summary.Chunks++;
            summary.Bytes += requestStream.Current.Data.Length;
        }

        return summary;
    }

    public override async Task Exchange(IAsyncStreamReader<Chunk> requestStream, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
    {
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            await responseStream.WriteAsync(requestStream.Current, context.CancellationToken);
        }
    }
}
