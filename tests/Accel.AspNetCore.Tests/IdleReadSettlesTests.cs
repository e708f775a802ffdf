using Accel.AspNetCore.Internal;
using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// The Kestrel transport counts what it reads from a connection until it knows whether the connection is in the fast
/// path, and reads that from the kernel the first time the connection waits for more after a request. A connection
/// from a client without the library then passes its reads straight through (counting them cost each of its requests
/// about a percent here); a connection from a library client goes on counting, which its client's writer paces on.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class IdleReadSettlesTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task A_client_without_the_library_is_counted_for_its_first_request_only()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var client = new HttpClient(new SocketsHttpHandler()) { BaseAddress = backend.Http1 };

        long[] inbound = await RequestsOnOneConnectionAsync(client, backend, 3);

        var server = Assert.IsType<AccelerationFeature>(backend.NotedFeature);
        Assert.True(server.Registration.IsSettled, "the transport did not read what the kernel did with the connection");
        Assert.True(server.Registration.PassesThrough, server.Registration.Outcome.ToString());
        Assert.Equal(RegistrationOutcome.PeerNotAccelerated, server.Outcome);
        Assert.True(inbound[0] > 0, "the first request was not counted");
        Assert.Equal(inbound[0], inbound[1]);
        Assert.Equal(inbound[0], inbound[2]);
    }

    [KernelFact]
    public async Task A_library_client_stays_counted()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient client = frontend.Client("h1");

        long[] inbound = await RequestsOnOneConnectionAsync(client, backend, 3);

        var server = Assert.IsType<AccelerationFeature>(backend.NotedFeature);
        Assert.True(server.Registration.IsSettled, "the transport did not read what the kernel did with the connection");
        Assert.Equal(RegistrationOutcome.Registered, server.Outcome);
        Assert.True(inbound[0] > 0 && inbound[1] > inbound[0] && inbound[2] > inbound[1], string.Join(", ", inbound));
        Assert.Equal(0L, frontend.Engine.GetStatistics().TcpBytes);
    }

    /// <summary>Sends <paramref name="count"/> requests one after another (a pooled client keeps one connection for
    /// them) and returns the server's count of bytes read after each, as its handler saw it.</summary>
    private static async Task<long[]> RequestsOnOneConnectionAsync(HttpClient client, Backend backend, int count)
    {
        var inbound = new long[count];
        IAccelerationFeature? first = null;
        for (int i = 0; i < count; i++)
        {
            using HttpResponseMessage response = await client.GetAsync("/noted/100");
            Assert.Equal(100, (await response.Content.ReadAsByteArrayAsync()).Length);
            first ??= backend.NotedFeature;
            Assert.Same(first, backend.NotedFeature); // the same connection
            inbound[i] = backend.NotedFeature!.InboundBytes;
        }

        return inbound;
    }
}
