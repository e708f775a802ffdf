using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Accel.AspNetCore.Internal;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// A server closes an idle keep-alive connection just as its client sends the next request on it. Over TCP that send
/// goes out, the closed server answers with a reset, the client reads the end of the connection and sends the request
/// again on a new one: the caller sees nothing. Through the fast path the send goes inside the connection's open window,
/// whose target has closed, and the kernel fails it at once (EPIPE); SocketsHttpHandler does not send an HTTP/1.1 request
/// again when its send failed, so the request failed (every time, before the HttpClient stream counted such a send as
/// done, as TCP takes it: <see cref="SocketRegistration.AbsorbsSendToClosedPeer"/>). The race is made certain: the connect
/// callback's stream holds the second request's first write until the server has closed the connection.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class IdleCloseRaceTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelTheory]
    [InlineData(false, true)] // HTTP/1.1 through the fast path
    [InlineData(true, true)] // h2c through the fast path
    [InlineData(false, false)] // HTTP/1.1 over TCP (the client without the library): what the fast path must match
    public async Task A_request_sent_as_the_server_closes_the_idle_connection_is_sent_again(bool http2, bool accelerated)
    {
        var accepted = new ConcurrentQueue<ConnectionContext>();
        await using LoopbackApp app = await LoopbackApp.StartAsync(
            fixture,
            k =>
            {
                k.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(1);
                k.Listen(IPAddress.Loopback, 0, o =>
                {
                    o.Protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1;
                    o.Use(next => context =>
                    {
                        accepted.Enqueue(context);
                        return next(context);
                    });
                });
            },
            web => web.MapGet("/", () => "ok"));
        var uri = app.Uri;
        AccelerationEngine engine = app.Engine;
        var connect = app.Connector;
        var streams = new ConcurrentQueue<HeldWriteStream>();
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                Stream inner = accelerated ? await connect.ConnectAsync(context, ct) : await ConnectPlainAsync(context.DnsEndPoint, ct);
                var stream = new HeldWriteStream(inner);
                streams.Enqueue(stream);
                return stream;
            },
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5), // the client keeps the connection the server closes
        };
        using var client = new HttpClient(handler)
        {
            BaseAddress = uri,
            DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        for (int round = 0; round < 2; round++)
        {
            Assert.Equal("ok", await client.GetStringAsync("/"));
            HeldWriteStream used = streams.Last();
            ConnectionContext server = accepted.Last();
            if (accelerated)
            {
                var registration = ((AcceleratedNetworkStream)used.Inner).Registration;
                Assert.Equal(DirectionPath.Redirected, registration.GetStatistics().Path);
            }

            // The next write on this connection waits until the server has closed it (its keep-alive timeout) and the
            // client's socket has had its FIN: the client's pool already chose the connection for the request.
            int connections = streams.Count;
            used.BeforeNextWrite = async () =>
            {
                await WhenClosedAsync(server.ConnectionClosed).WaitAsync(TimeSpan.FromSeconds(30));
                await Task.Delay(50);
            };
            Assert.Equal("ok", await client.GetStringAsync("/"));
            Assert.Null(used.BeforeNextWrite); // the held write was the request's, on the connection the server closed
            output.WriteLine($"round {round}: the request was sent again on connection {streams.Count} (the closed one was {connections})");
            Assert.Equal(connections + 1, streams.Count);
        }

        AccelerationStatistics stats = engine.GetStatistics();
        output.WriteLine(stats.ToString());
        Assert.Equal(0, stats.DegradedDirections);
    }

    private static async Task<Stream> ConnectPlainAsync(DnsEndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Task WhenClosedAsync(CancellationToken closed)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        closed.Register(() => done.TrySetResult());
        return done.Task;
    }

    /// <summary>Passes everything through, but runs <see cref="BeforeNextWrite"/> (once) before the next write.</summary>
    private sealed class HeldWriteStream(Stream inner) : PassThroughStream(inner)
    {
        public Func<Task>? BeforeNextWrite { get; set; }

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("SocketsHttpHandler writes asynchronously here");

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (BeforeNextWrite is { } before)
            {
                BeforeNextWrite = null;
                await before();
            }

            await base.WriteAsync(buffer, cancellationToken);
        }
    }
}
