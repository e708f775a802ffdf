using Accel.AspNetCore;
using Google.Protobuf;
using Grpc.Core;

namespace Accel.GrpcDemo;

/// <summary>The server side: plain gRPC code. Nothing in it knows about acceleration except <see cref="Connection"/>,
/// which reads the connection's <see cref="IAccelerationFeature"/> to show it.</summary>
public sealed class TransferService : Transfer.TransferBase
{
    public override Task<Chunk> Echo(Chunk request, ServerCallContext context) => Task.FromResult(request);

    public override async Task Download(DownloadRequest request, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
    {
        for (int i = 0; i < request.Count; i++)
        {
            await responseStream.WriteAsync(Chunks.Make(i, request.Size), context.CancellationToken);
        }
    }

    public override async Task<Summary> Upload(IAsyncStreamReader<Chunk> requestStream, ServerCallContext context)
    {
        var summary = new Summary();
        await foreach (Chunk chunk in requestStream.ReadAllAsync(context.CancellationToken))
        {
            summary.Chunks++;
            summary.Bytes += chunk.Data.Length;
            summary.Checksum = Chunks.Checksum(summary.Checksum, chunk);
        }

        return summary;
    }

    public override async Task Exchange(IAsyncStreamReader<Chunk> requestStream, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
    {
        await foreach (Chunk chunk in requestStream.ReadAllAsync(context.CancellationToken))
        {
            await responseStream.WriteAsync(chunk, context.CancellationToken);
        }
    }

    public override async Task<Chunk> Wait(WaitRequest request, ServerCallContext context)
    {
        await Task.Delay(request.Milliseconds, context.CancellationToken);
        return new Chunk();
    }

    public override Task<ConnectionReply> Connection(Empty request, ServerCallContext context)
    {
        IAccelerationFeature? f = context.GetHttpContext().Features.Get<IAccelerationFeature>();
        return Task.FromResult(f is null
            ? new ConnectionReply { Outcome = "no feature: not served by the accelerated transport" }
            : new ConnectionReply
            {
                Accelerated = f.IsAccelerated,
                Outcome = f.Outcome.ToString(),
                Path = f.Outbound.Path.ToString(),
                RedirectedBytes = f.Outbound.RedirectedBytes,
                TcpBytes = f.Outbound.TcpBytes,
            });
    }
}

/// <summary>The demo's data: chunk i is a function of i, so any lost, repeated or reordered byte shows.</summary>
public static class Chunks
{
    public static Chunk Make(long index, int size)
    {
        byte[] data = new byte[size];
        for (int i = 0; i < size; i++)
        {
            data[i] = (byte)(index * 31 + i * 7 + (i >> 8));
        }

        return new Chunk { Index = index, Data = ByteString.CopyFrom(data) };
    }

    public static bool IsValid(Chunk chunk, long index, int size)
        => chunk.Index == index && chunk.Data.Span.SequenceEqual(Make(index, size).Data.Span);

    public static ulong Checksum(ulong sum, Chunk chunk)
    {
        foreach (byte b in chunk.Data.Span)
        {
            sum = (sum ^ b) * 1099511628211UL;
        }

        return (sum ^ (ulong)chunk.Index) * 1099511628211UL;
    }
}
