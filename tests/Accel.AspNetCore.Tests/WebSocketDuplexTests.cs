using System.Net.WebSockets;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// A WebSocket over HTTP/1.1 with both ends sending at once, each many times the backlog bound, and each reading in a loop
/// of its own: after the upgrade the connection is the HttpClient stream's and the Kestrel transport's alone, each end's
/// writer and reader busy at once. Every byte arrives in order both ways (the pattern checked message by message),
/// neither side stalls, and the connection stays in the fast path: nothing through TCP, the closing handshake included
/// (a close frame sent after the peer had closed would go through TCP, and did, when the server closed first). A late
/// reader does not make the client's writer wait here: with the server's application reading 300 ms late the writer went
/// unpaced in four runs of five, so Kestrel seems to read an upgraded connection ahead of its application (not looked
/// into further); the pacing has tests of its own.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class WebSocketDuplexTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const long BytesEachWay = 64L << 20; // sixteen times the default bound
    private const int MessageBytes = 64 * 1024;

    [KernelFact]
    public async Task Both_ends_sending_at_once_get_every_byte_in_order_through_the_fast_path()
    {
        string? serverError = null;
        await using LoopbackApp app = await LoopbackApp.StartAsync(fixture, "1.1", web =>
        {
            web.UseWebSockets();
            web.Map("/duplex", async (HttpContext context) =>
            {
                using WebSocket socket = await context.WebSockets.AcceptWebSocketAsync();
                Task<string?> receiving = ReceiveAsync(socket, context.RequestAborted);
                await SendAsync(socket, context.RequestAborted);
                serverError = await receiving;
                // The closing handshake: the client's close first, then this end's answer, so that no frame of either
                // meets a closed peer.
                ValueWebSocketReceiveResult close = await socket.ReceiveAsync(Memory<byte>.Empty, context.RequestAborted);
                serverError ??= close.MessageType == WebSocketMessageType.Close ? null : "no close after the data";
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, context.RequestAborted);
            });
        });

        AccelerationStatistics before = app.Engine.GetStatistics();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var client = new ClientWebSocket();
        var uri = new UriBuilder(app.Uri) { Scheme = "ws", Path = "/duplex" }.Uri;
        await client.ConnectAsync(uri, new HttpMessageInvoker(app.Handler()), timeout.Token);
        var started = System.Diagnostics.Stopwatch.StartNew();
        Task<string?> receiving = ReceiveAsync(client, timeout.Token);
        await SendAsync(client, timeout.Token);
        Assert.Null(await receiving);
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
        output.WriteLine($"{BytesEachWay >> 20} MiB each way at once in {started.ElapsedMilliseconds} ms");
        Assert.Null(serverError);

        app.AssertThroughFastPath(before, 2 * BytesEachWay - 4L * AccelerationEngine.WindowBytes, output);
    }

    /// <summary>Sends <see cref="BytesEachWay"/> bytes of <see cref="Pattern"/> in binary messages.</summary>
    private static async Task SendAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        byte[] message = new byte[MessageBytes];
        for (long offset = 0; offset < BytesEachWay; offset += MessageBytes)
        {
            for (int i = 0; i < message.Length; i++)
            {
                message[i] = Pattern.At(offset + i);
            }

            await socket.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        }
    }

    /// <summary>Receives <see cref="BytesEachWay"/> bytes and checks them against <see cref="Pattern"/>; null when all are
    /// right, else what was wrong.</summary>
    private static async Task<string?> ReceiveAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[MessageBytes];
        long offset = 0;
        while (offset < BytesEachWay)
        {
            ValueWebSocketReceiveResult result = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return $"closed after {offset} bytes";
            }

            for (int i = 0; i < result.Count; i++, offset++)
            {
                if (buffer[i] != Pattern.At(offset))
                {
                    return $"byte {offset} is 0x{buffer[i]:x2}, expected 0x{Pattern.At(offset):x2}";
                }
            }
        }

        return null;
    }
}
