using Accel.AspNetCore.Internal;
using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// A request on a connection of its own (<c>Connection: close</c>) through the library's HttpClient and Kestrel
/// transport: its bytes are redirected, the server's end never reads its registration from the kernel (the transport
/// reads it when something needs it), and the client's end reads it once, with its check after the first write for a
/// server without the library. Reading both ends' at once, and the client's again for that check, made such a request
/// 2 to 6% slower than with no library at all.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class ConnectionPerRequestTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task A_request_on_a_connection_of_its_own_is_redirected_without_the_server_reading_its_registration()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        var streams = new List<AcceleratedNetworkStream>();
        SocketsHttpHandler handler = frontend.NewHandler();
        var connect = handler.ConnectCallback!;
        handler.ConnectCallback = async (context, token) =>
        {
            Stream stream = await connect(context, token);
            lock (streams)
            {
                streams.Add(Assert.IsType<AcceleratedNetworkStream>(stream));
            }

            return stream;
        };
        using var client = new HttpClient(handler) { BaseAddress = backend.Http1 };

        for (int i = 0; i < 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/noted/1000");
            request.Headers.ConnectionClose = true;
            using HttpResponseMessage response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Null(await Pattern.VerifyAsync(await response.Content.ReadAsStreamAsync(), 1000, CancellationToken.None));

            var server = Assert.IsType<AccelerationFeature>(backend.NotedFeature);
            Assert.False(server.Registration.IsSettled, $"request {i}: the server read its registration");
            Assert.True(streams[i].Registration.IsSettled, $"request {i}: the client's check after its first write did not run");
            Assert.Equal(RegistrationOutcome.Registered, streams[i].Registration.Outcome);
        }

        Assert.Equal(5, streams.Count);
        AccelerationStatistics stats = frontend.Engine.GetStatistics();
        Assert.Equal(0L, stats.TcpBytes);
        Assert.True(stats.RedirectedBytes > 0, stats.ToString());

        // Asked first once its connection has closed, a registration can only say so.
        Assert.Equal(RegistrationOutcome.NotEstablished, backend.NotedFeature!.Outcome);

        // Asked while the connection is open, each end says what the kernel did with it.
        using (HttpResponseMessage open = await client.GetAsync("/noted/10"))
        {
            Assert.Equal(10, (await open.Content.ReadAsByteArrayAsync()).Length);
            Assert.True(backend.NotedFeature!.IsAccelerated, backend.NotedFeature.Detail);
            Assert.Equal(RegistrationOutcome.Registered, streams[^1].Registration.Outcome);
        }
    }
}
