using System.Net;
using System.Security.Cryptography;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// A server with the library stops gracefully (<c>StopAsync</c>) while eight clients download and upload through the
/// fast path: Kestrel stops accepting, finishes or ends what is in flight and closes its connections, and the library's
/// transport settles each connection's last window as Kestrel aborts or disposes it. Every request either completes with
/// the right bytes or fails with an <see cref="HttpRequestException"/> (or an <see cref="IOException"/> reading its body),
/// and none waits for its timeout. Measured by hand against the same load over plain TCP (Kestrel's own transport, a
/// default handler; 2026-12-05, five stops per protocol, a few times): the same kinds of failure in about the same
/// numbers. Connection refused for the requests after the stop; on HTTP/1.1 one to five "response ended prematurely" per
/// stop (a request sent on a keep-alive connection as Kestrel closed it); on h2c, in a cold process's first stop, eight
/// requests failed with the server's GOAWAY (NO_ERROR) on both paths. No wrong byte on either.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class GracefulShutdownTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const int Clients = 8;
    private const int Stops = 3;

    [KernelTheory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task A_server_stopping_under_load_ends_every_request_with_its_bytes_or_an_error(string version)
    {
        int completed = 0;
        for (int stop = 0; stop < Stops; stop++)
        {
            LoopbackApp app = await LoopbackApp.StartAsync(
                fixture,
                k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = version == "2.0" ? HttpProtocols.Http2 : HttpProtocols.Http1),
                Map);
            try
            {
                using var client = new HttpClient(new SocketsHttpHandler { ConnectCallback = app.Connector.ConnectAsync })
                {
                    BaseAddress = app.Uri,
                    DefaultRequestVersion = Version.Parse(version),
                    DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
                    Timeout = TimeSpan.FromSeconds(30), // a request that hangs fails the test (TaskCanceledException)
                };
                var load = new Load(client);
                using var end = new CancellationTokenSource();
                Task[] clients = [.. Enumerable.Range(0, Clients).Select(i => Task.Run(() => load.RunAsync(i, end.Token)))];
                await Task.Delay(700);
                await app.App.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
                await Task.Delay(300);
                end.Cancel();
                await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(60));
                output.WriteLine($"stop {stop}: {load.Completed} requests completed, {load.Failed} failed ({string.Join("; ", load.Errors.Distinct())})");
                Assert.Equal(0, load.Wrong);
                completed += load.Completed;
            }
            finally
            {
                await app.DisposeAsync();
            }
        }

        Assert.True(completed > 0, "no request completed before the stops");
    }

    private static void Map(WebApplication web)
    {
        // n bytes in 16 KiB writes a millisecond apart: a download is in flight for a while.
        web.MapGet("/slow/{n:int}", async (int n, HttpContext context) =>
        {
            context.Response.ContentLength = n;
            byte[] all = Pattern(n);
            for (int sent = 0; sent < n; sent += 16 * 1024)
            {
                await context.Response.Body.WriteAsync(all.AsMemory(sent, Math.Min(16 * 1024, n - sent)));
                await Task.Delay(1);
            }
        });
        web.MapPost("/hash", async (HttpContext context) =>
        {
            var copy = new MemoryStream();
            await context.Request.Body.CopyToAsync(copy);
            return Results.Text(Convert.ToHexString(SHA256.HashData(copy.ToArray())));
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

    /// <summary>Downloads of 256 KiB and uploads of up to 3 MiB, each client choosing at random, until told to end.</summary>
    private sealed class Load(HttpClient client)
    {
        private int _completed, _failed, _wrong;

        public int Completed => _completed;

        public int Failed => _failed;

        public int Wrong => _wrong;

        public List<string> Errors { get; } = new();

        public async Task RunAsync(int seed, CancellationToken end)
        {
            var random = new Random(seed);
            while (!end.IsCancellationRequested)
            {
                try
                {
                    if (await RequestAsync(random))
                    {
                        Interlocked.Increment(ref _completed);
                    }
                    else
                    {
                        Interlocked.Increment(ref _wrong);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or IOException)
                {
                    Interlocked.Increment(ref _failed);
                    lock (Errors)
                    {
                        Errors.Add((e.InnerException ?? e).Message);
                    }

                    await Task.Delay(10);
                }
            }
        }

        /// <summary>One request; whether what came back is right.</summary>
        private async Task<bool> RequestAsync(Random random)
        {
            if (random.Next(2) == 0)
            {
                const int size = 256 * 1024;
                byte[] got = await client.GetByteArrayAsync($"/slow/{size}");
                return got.AsSpan().SequenceEqual(Pattern(size));
            }

            byte[] body = new byte[random.Next(1, 3 << 20)];
            random.NextBytes(body);
            using HttpResponseMessage response = await client.PostAsync("/hash", new ByteArrayContent(body));
            response.EnsureSuccessStatusCode();
            return await response.Content.ReadAsStringAsync() == Convert.ToHexString(SHA256.HashData(body));
        }
    }
}
