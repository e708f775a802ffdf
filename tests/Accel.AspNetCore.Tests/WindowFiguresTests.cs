using System.IO.Pipelines;
using System.Net;
using Accel.AspNetCore.Internal;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// The library's transports have windows: one redirect verdict covers up to 64 KiB of a connection's next sends, and the
/// kernel does not see the sends inside it. The process's figures must still count every byte they sent, once: the kernel
/// counts each window when its program next runs, and each connection's writer settles its last window when it ends
/// (<see cref="SocketRegistration.SettleWindow"/>). What the writers were given is counted above the library: the client's
/// stream by a wrapper in the connect callback, Kestrel's output by connection middleware.
/// </summary>
/// <remarks>
/// HTTP/2's end is the one exception. When the client closes a connection, Kestrel answers with a GOAWAY frame into a
/// socket whose peer has gone: inside an open window that send fails at once (the kernel keeps the window's target, which
/// has closed), Kestrel closes the socket, and the connection's last window cannot be read any more. What it carried
/// stays uncounted: at most one window per connection, never a byte too many.
/// </remarks>
[Collection(KernelCollection.Name)]
public sealed class WindowFiguresTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_process_counts_every_byte_its_transports_sent_once_all_redirected(bool http2)
    {
        long serverWritten = 0, clientWritten = 0;
        int open = 0;
        await using LoopbackApp app = await LoopbackApp.StartAsync(
            fixture,
            k => k.Listen(IPAddress.Loopback, 0, o =>
            {
                o.Protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1;
                o.Use(next => async context =>
                {
                    Interlocked.Increment(ref open);
                    try
                    {
                        context.Transport = new CountedPipe(context.Transport.Input, new CountingPipeWriter(context.Transport.Output, n => Interlocked.Add(ref serverWritten, n)));
                        await next(context);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref open);
                    }
                });
            }),
            web => web.MapPost("/reply/{n:int}", async (int n, HttpContext ctx) =>
            {
                Assert.Null(await Pattern.VerifyAsync(ctx.Request.Body, ctx.Request.ContentLength ?? 0, ctx.RequestAborted));
                ctx.Response.ContentLength = n;
                await Pattern.WriteAsync(ctx.Response.Body, n, ctx.RequestAborted);
            }));
        var uri = app.Uri;
        AccelerationEngine engine = app.Engine;
        AccelerationStatistics before = engine.GetStatistics();

        var connect = app.Connector;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) => new CountingStream(await connect.ConnectAsync(context, ct), n => Interlocked.Add(ref clientWritten, n)),
            MaxConnectionsPerServer = 4,
        };
        var random = new Random(http2 ? 2 : 1);
        var sizes = Enumerable.Range(0, 200).Select(_ => (Request: random.Next(0, 3) == 0 ? random.Next(0, 200_000) : random.Next(0, 2000), Response: random.Next(0, 3) == 0 ? random.Next(0, 200_000) : random.Next(0, 2000))).ToList();
        using (var client = new HttpClient(handler) { BaseAddress = uri, DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact })
        {
            using var gate = new SemaphoreSlim(8);
            await Task.WhenAll(sizes.Select(async size =>
            {
                await gate.WaitAsync();
                try
                {
                    var body = new MemoryStream();
                    await Pattern.WriteAsync(body, size.Request, CancellationToken.None);
                    using HttpResponseMessage response = await client.PostAsync($"/reply/{size.Response}", new ByteArrayContent(body.ToArray()));
                    response.EnsureSuccessStatusCode();
                    Assert.Null(await Pattern.VerifyAsync(await response.Content.ReadAsStreamAsync(), size.Response, CancellationToken.None));
                }
                finally
                {
                    gate.Release();
                }
            }));
        }

        // The client closes its connections (each stream settles as it closes), then the server ends its own (settled when
        // Kestrel disposes them) before it stops: stopping first would send HTTP/2's GOAWAY into connections the client
        // has closed, and a connection whose last send fails is left unsettled (at most one window).
        var ended = System.Diagnostics.Stopwatch.StartNew();
        while (Volatile.Read(ref open) > 0 && ended.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(10);
        }

        Assert.Equal(0, Volatile.Read(ref open));
        await app.App.StopAsync();
        AccelerationStatistics after = engine.GetStatistics();
        long redirected = after.RedirectedBytes - before.RedirectedBytes, tcp = after.TcpBytes - before.TcpBytes;
        output.WriteLine($"client wrote {clientWritten} B, server {serverWritten} B; the process counted {redirected} B redirected in {after.RedirectedMessages - before.RedirectedMessages} verdicts, {tcp} B through TCP");
        if (!http2)
        {
            Assert.Equal((clientWritten + serverWritten, 0L), (redirected, tcp));
            return;
        }

        long uncounted = clientWritten + serverWritten - redirected - tcp;
        Assert.True(uncounted >= 0 && uncounted <= AccelerationEngine.WindowBytes, $"{uncounted} B uncounted, more than one window of the one connection");
        Assert.True(tcp <= 64, $"{tcp} B through TCP"); // at most the GOAWAY, had its send ended the window exactly
    }

    private sealed class CountedPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>Counts what Kestrel commits to the transport's output.</summary>
    private sealed class CountingPipeWriter(PipeWriter inner, Action<int> count) : PipeWriter
    {
        public override void Advance(int bytes)
        {
            count(bytes);
            inner.Advance(bytes);
        }

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;
    }

    /// <summary>Counts what SocketsHttpHandler writes to the library's stream.</summary>
    private sealed class CountingStream(Stream inner, Action<int> counted) : PassThroughStream(inner)
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            counted(count);
            base.Write(buffer, offset, count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            counted(buffer.Length);
            return base.WriteAsync(buffer, cancellationToken);
        }
    }
}
