using System.Net;
using System.Security.Cryptography;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// Requests that the client cancels at random moments, mid-upload and mid-download, among requests that run to the end,
/// through the library at both ends. On HTTP/1.1 a canceled request ends its connection while either side may still be
/// sending (the server's writes then meet a closed peer, the client's queued writes are dropped); on h2c it resets one
/// stream of a shared connection, whose other streams go on. Every request that is not canceled must come back whole
/// (downloads checked byte for byte, uploads by the server's SHA-256 of what it read), a canceled one must end with
/// <see cref="OperationCanceledException"/>, none may hang, and afterwards the same client's requests must still go
/// through the fast path, whole.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class CancellationStormTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const int Clients = 8;
    private static readonly TimeSpan StormLength = TimeSpan.FromSeconds(4);

    [KernelTheory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task Requests_canceled_at_random_leave_every_other_request_whole_and_the_client_usable(string version)
    {
        await using LoopbackApp app = await LoopbackApp.StartAsync(
            fixture,
            k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = version == "2.0" ? HttpProtocols.Http2 : HttpProtocols.Http1),
            Map);
        using var client = new HttpClient(new SocketsHttpHandler { ConnectCallback = app.Connector.ConnectAsync })
        {
            BaseAddress = app.Uri,
            DefaultRequestVersion = Version.Parse(version),
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(30), // a request that hangs fails the test
        };

        var storm = new Storm(client);
        using (var end = new CancellationTokenSource(StormLength))
        {
            Task[] clients = [.. Enumerable.Range(0, Clients).Select(i => Task.Run(() => storm.RunAsync(i, end.Token)))];
            await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(90));
        }

        output.WriteLine($"HTTP/{version}: {storm.Whole} requests whole, {storm.Canceled} canceled, {storm.FinishedFirst} finished before their cancellation");
        Assert.Equal(0, storm.Wrong);
        Assert.True(storm.Whole > 0 && storm.Canceled > 0, "the storm made no whole or no canceled request");

        // The client goes on: its next requests come back whole, through the fast path. First the server's handlers of the
        // last canceled requests end (their connections closed, RequestAborted stops their writes), whose sends to a
        // closed peer would go through TCP.
        await Task.Delay(500);
        AccelerationStatistics before = app.Engine.GetStatistics();
        var random = new Random(1);
        for (int i = 0; i < 20; i++)
        {
            Assert.True(await Storm.RequestAsync(client, random, CancellationToken.None), "a request after the storm came back wrong");
        }

        AccelerationStatistics after = app.Engine.GetStatistics();
        output.WriteLine($"after the storm: redirected {after.RedirectedBytes - before.RedirectedBytes} B, through TCP {after.TcpBytes - before.TcpBytes} B");
        Assert.True(after.RedirectedBytes > before.RedirectedBytes, "the requests after the storm were not redirected");
        Assert.Equal(before.TcpBytes, after.TcpBytes);
    }

    private static void Map(WebApplication web)
    {
        // n bytes in 16 KiB writes with a pause every 64 KiB: a download is in flight long enough to be canceled.
        web.MapGet("/slow/{n:int}", async (int n, HttpContext context) =>
        {
            context.Response.ContentLength = n;
            byte[] all = Pattern(n);
            for (int sent = 0; sent < n; sent += 16 * 1024)
            {
                await context.Response.Body.WriteAsync(all.AsMemory(sent, Math.Min(16 * 1024, n - sent)), context.RequestAborted);
                if (sent % (64 * 1024) == 0)
                {
                    await Task.Delay(1, context.RequestAborted);
                }
            }
        });
        web.MapPost("/hash", async (HttpContext context) =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[64 * 1024];
            int n;
            while ((n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                sha.AppendData(buffer, 0, n);
            }

            return Results.Text(Convert.ToHexString(sha.GetHashAndReset()));
        });
    }

    private static byte[] Pattern(int n)
    {
        var bytes = new byte[n];
        for (int i = 0; i < n; i++)
        {
            bytes[i] = (byte)(i * 7 + (i >> 8));
        }

        return bytes;
    }

    private sealed class Storm(HttpClient client)
    {
        private int _whole, _canceled, _finishedFirst, _wrong;

        public int Whole => _whole;

        public int Canceled => _canceled;

        public int FinishedFirst => _finishedFirst;

        public int Wrong => _wrong;

        public async Task RunAsync(int seed, CancellationToken end)
        {
            var random = new Random(seed);
            while (!end.IsCancellationRequested)
            {
                bool cancel = random.Next(2) == 0;
                using var cts = new CancellationTokenSource();
                if (cancel)
                {
                    cts.CancelAfter(TimeSpan.FromMilliseconds(random.Next(0, 30)));
                }

                try
                {
                    bool right = await RequestAsync(client, random, cts.Token);
                    if (!right)
                    {
                        Interlocked.Increment(ref _wrong);
                    }
                    else if (cancel)
                    {
                        Interlocked.Increment(ref _finishedFirst);
                    }
                    else
                    {
                        Interlocked.Increment(ref _whole);
                    }
                }
                catch (OperationCanceledException) when (cancel && cts.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _canceled);
                }
            }
        }

        /// <summary>A download of 64 KiB to 2 MiB or an upload of 1 B to 3 MiB, the kind and size at random; whether what
        /// came back is right.</summary>
        public static async Task<bool> RequestAsync(HttpClient client, Random random, CancellationToken cancellationToken)
        {
            if (random.Next(2) == 0)
            {
                int size = random.Next(64 * 1024, 2 << 20);
                using HttpResponseMessage response = await client.GetAsync($"/slow/{size}", HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                response.EnsureSuccessStatusCode();
                byte[] got = await response.Content.ReadAsByteArrayAsync(cancellationToken);
                return got.AsSpan().SequenceEqual(Pattern(size));
            }

            byte[] body = new byte[random.Next(1, 3 << 20)];
            random.NextBytes(body);
            using HttpResponseMessage posted = await client.PostAsync("/hash", new ByteArrayContent(body), cancellationToken);
            posted.EnsureSuccessStatusCode();
            return await posted.Content.ReadAsStringAsync(cancellationToken) == Convert.ToHexString(SHA256.HashData(body));
        }
    }
}
