using System.Net;
using Accel.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// New connections made and dropped one after another, several at a time, as a client that renews its pool does: each
/// one's first requests must be answered, whole, whether both ends use the library (both in the map), only the client
/// does (it leaves the map after its first write) or only the server does (its accepted socket stays out of the map). A connection that stalled in its first exchanges (a
/// lost preface, SETTINGS or WINDOW_UPDATE frame, a reader never woken) fails here with its number, instead of
/// hanging.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class ConnectionChurnTests(KernelFixture fixture)
{
    private const int Workers = 4;
    private const int ConnectionsPerWorker = 40;

    [KernelTheory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task Every_new_connection_answers_its_first_requests_whole(bool clientAccelerated, bool serverAccelerated)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: serverAccelerated);
        using var frontend = new Frontend(fixture.Environment, enabled: clientAccelerated, backend);
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
        {
            for (int i = 0; i < ConnectionsPerWorker; i++)
            {
                bool h2c = (worker + i) % 2 == 0;
                using var client = new HttpClient(frontend.NewHandler()) { BaseAddress = h2c ? backend.Http2 : backend.Http1 };
                if (h2c)
                {
                    client.DefaultRequestVersion = HttpVersion.Version20;
                    client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
                }

                foreach (int size in new[] { 1000, 256 << 10, 1000 })
                {
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                    try
                    {
                        using var response = await client.GetAsync($"/bytes/{size}", HttpCompletionOption.ResponseHeadersRead, cts.Token);
                        Assert.Null(await Pattern.VerifyAsync(await response.Content.ReadAsStreamAsync(cts.Token), size, cts.Token));
                    }
                    catch (OperationCanceledException) when (cts.IsCancellationRequested)
                    {
                        Assert.Fail($"worker {worker}, connection {i} ({(h2c ? "h2c" : "HTTP/1.1")}): no answer to GET /bytes/{size} in 20 s");
                    }
                }
            }
        }))).WaitAsync(TimeSpan.FromMinutes(3));

        // Every connection took the path its ends call for: redirected both ways when both use the library, out of the
        // map after its first write when only the client does, never in it when only the server does.
        const int connections = Workers * ConnectionsPerWorker;
        if (!clientAccelerated)
        {
            AccelerationStatistics server = backend.Services.GetRequiredService<Internal.AccelerationEngineProvider>().Engine.GetStatistics();
            Assert.Equal((connections, 0L, 0L), (server.SkippedPlainPeers, server.RedirectedMessages, server.TcpMessages));
            return;
        }

        AccelerationStatistics stats = frontend.Engine.GetStatistics();
        Assert.Equal(connections, stats.RegisteredSockets);
        if (serverAccelerated)
        {
            Assert.Equal(0L, stats.TcpMessages);
        }
        else
        {
            Assert.Equal((stats.RegisteredSockets, 0L), (stats.TcpMessages, stats.RedirectedMessages));
        }
    }
}
