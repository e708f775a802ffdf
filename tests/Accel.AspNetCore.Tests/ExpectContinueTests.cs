using System.Net;
using System.Net.Http.Headers;
using Accel.AspNetCore.Internal;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// Uploads with <c>Expect: 100-continue</c>: the client sends the request's headers, waits for the server's 100 (which
/// Kestrel sends when the endpoint first reads the body) or its final answer, and only then sends the body, or not at
/// all. The headers' write is the connection's first (the one that decides whether it stays in the fast path), and the
/// body follows a read of the interim response, so the HttpClient stream's first-write check and its bursts
/// (<see cref="AcceleratedNetworkStream"/>) meet a request shape the other tests do not make. Each case runs through
/// the library's handler and Kestrel transport, on HTTP/1.1 and h2c: every body arrives whole, an answer without a 100
/// is read and no body follows it, and the bytes went through the fast path, none through TCP.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class ExpectContinueTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const int Requests = 10;

    /// <summary>The last window of both directions of each connection (at most one per request, and one more) that may
    /// still be uncounted.</summary>
    private const long Slack = 2L * AccelerationEngine.WindowBytes * (Requests + 1);

    [KernelTheory]
    [InlineData("1.1", 2 << 20)]
    [InlineData("1.1", 64 << 10)]
    [InlineData("2.0", 2 << 20)]
    [InlineData("2.0", 64 << 10)]
    public async Task A_body_sent_after_the_servers_100_arrives_whole(string version, int size)
    {
        await using LoopbackApp app = await StartAsync(version);
        using HttpClient client = Client(app, version);
        byte[] body = Body(size);
        AccelerationStatistics before = app.Engine.GetStatistics();
        for (int i = 0; i < Requests; i++)
        {
            using HttpResponseMessage response = await client.SendAsync(Upload("/hash", body, version)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(TransferEndpoints.Hash(body), await response.Content.ReadAsStringAsync());
        }

        app.AssertThroughFastPath(before, Requests * (long)size - Slack, output);
        output.WriteLine($"HTTP/{version}: {Requests} uploads of {size} B with Expect: 100-continue, each read whole by the server (its SHA-256)");
    }

    [KernelTheory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task An_answer_without_a_100_is_read_and_no_body_follows_it(string version)
    {
        await using LoopbackApp app = await StartAsync(version);
        using HttpClient client = Client(app, version);
        byte[] body = Body(2 << 20);
        AccelerationStatistics before = app.Engine.GetStatistics();
        for (int i = 0; i < Requests; i++)
        {
            // The endpoint answers without reading the body: Kestrel sends no 100, so the client sends no body.
            using HttpResponseMessage refused = await client.SendAsync(Upload("/refuse", body, version)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);

            // Then the client goes on, on the same connection (h2c) or a new one (HTTP/1.1 closes it: the body it announced
            // was never sent), and its next upload arrives whole.
            using HttpResponseMessage accepted = await client.SendAsync(Upload("/hash", body, version)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
            Assert.Equal(TransferEndpoints.Hash(body), await accepted.Content.ReadAsStringAsync());
        }

        long redirected = app.AssertThroughFastPath(before, Requests * (long)body.Length - Slack, output);
        Assert.True(redirected < Requests * (long)body.Length * 3 / 2, $"{redirected} B redirected: the refused requests' bodies were sent too");
    }

    /// <summary>POST /hash (<see cref="TransferEndpoints"/>) reads the body; POST /refuse answers 403 without reading it.</summary>
    private Task<LoopbackApp> StartAsync(string version) => LoopbackApp.StartAsync(fixture, version, web =>
    {
        TransferEndpoints.Map(web);
        web.MapPost("/refuse", () => Results.StatusCode(StatusCodes.Status403Forbidden));
    });

    // Long enough that the body waits for the server's 100 rather than for this timer.
    private static HttpClient Client(LoopbackApp app, string version) => app.Client(version, h => h.Expect100ContinueTimeout = TimeSpan.FromSeconds(10));

    private static HttpRequestMessage Upload(string path, byte[] body, string version) => new(HttpMethod.Post, path)
    {
        Version = Version.Parse(version),
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Headers = { ExpectContinue = true },
        Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/octet-stream") } },
    };

    private static byte[] Body(int size)
    {
        var body = new byte[size];
        new Random(size).NextBytes(body);
        return body;
    }
}
