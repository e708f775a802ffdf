using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// In the normal case (both ends opted in before the connection exists) both directions must be
/// redirected from the first byte, although the client writes right after connect and the server right
/// after accept. The kernel inserts both sockets at establishment, so neither end's first send can find
/// its peer missing unless the handshake's last ACK is still in flight.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class AccelerationShareTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelFact]
    public async Task Prepared_connections_are_redirected_both_ways_from_the_first_byte()
    {
        const int connections = 1000;
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        var run = await new StressServer(engine, fixture.Environment).RunAsync(connections, messages: 8, maxSize: 2048, mixed: false);

        Assert.Empty(run.Server.Concat(run.Client).Where(r => r.Error is not null).Select(r => r.Error).Take(10));
        Assert.Equal(connections, run.Client.Count);
        Assert.Equal(connections, run.Server.Count);
        var serverRedirected = run.Server.Where(r => r.Path == "Redirected").Select(r => r.ClientPort).ToHashSet();
        int both = run.Client.Count(r => r.Path == "Redirected" && serverRedirected.Contains(r.ClientPort));
        double share = (double)both / connections;
        output.WriteLine($"both directions redirected: {both}/{connections} ({share:P1}); client->server {run.Client.Count(r => r.Path == "Redirected")}, server->client {serverRedirected.Count}");
        Assert.True(share >= 0.95, $"Only {share:P1} of connections were redirected both ways.");
    }
}
