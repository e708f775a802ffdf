using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// A service with the library calling a same-host service without it: each connection's first write finds no peer, and
/// the connection then leaves the fast path, so that its later sends pay nothing for it (in the map they went through
/// the sk_msg program and tcp_bpf's copy: 2 to 7% slower than no library). Bodies must arrive whole either way.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class PlainServerTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task Connections_to_a_server_without_the_library_leave_the_fast_path_after_their_first_write()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: false);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        byte[] body = Enumerable.Range(0, 3 << 20).Select(i => (byte)(i * 31 + 7)).ToArray();
        foreach (string name in new[] { "h1", "h2c" })
        {
            HttpClient client = frontend.Client(name);
            for (int i = 0; i < 20; i++)
            {
                Assert.Equal(1000, (await client.GetByteArrayAsync("/bytes/1000")).Length);
            }

            using (var large = await client.GetAsync($"/bytes/{3 << 20}", HttpCompletionOption.ResponseHeadersRead))
            {
                Assert.Null(await Pattern.VerifyAsync(await large.Content.ReadAsStreamAsync(), 3 << 20, CancellationToken.None));
            }

            if (name == "h1")
            {
                // (An h2c echo this large needs its response read while the request is still sent: not this test's point.)
                using var response = await client.PostAsync("/echo", new ByteArrayContent(body));
                Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
            }
        }

        // The synchronous API writes through the stream's synchronous path: it leaves the map the same way.
        using (var sync = new HttpClient(frontend.NewHandler()) { BaseAddress = backend.Http1 })
        {
            for (int i = 0; i < 20; i++)
            {
                using var response = sync.Send(new HttpRequestMessage(HttpMethod.Get, "/bytes/1000"));
                Assert.Equal(1000, response.Content.ReadAsByteArrayAsync().Result.Length);
            }

            using var echo = sync.Send(new HttpRequestMessage(HttpMethod.Post, "/echo") { Content = new ByteArrayContent(body) });
            Assert.Equal(body, echo.Content.ReadAsByteArrayAsync().Result);
        }

        // Each connection ran the sk_msg program for its first write only (a verdict of TCP), then left the map.
        AccelerationStatistics stats = frontend.Engine.GetStatistics();
        Assert.True(stats.RegisteredSockets >= 2, stats.ToString());
        Assert.Equal((stats.RegisteredSockets, 0L), (stats.TcpMessages, stats.RedirectedMessages));
    }
}
