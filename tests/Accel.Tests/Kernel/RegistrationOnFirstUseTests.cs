using Accel.Testing;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

/// <summary>
/// The Kestrel transport and the HttpClient stream register their sockets on first use: what the kernel did at
/// establishment is read only when something needs it (a report, a wait for the reader, the check after the first write,
/// the outcome or the figures). A connection that carries one small request then pays no syscall for its registration,
/// where reading it at once cost 2 to 5 us per connection on this VM. Whatever reads it first, the outcome must be the one
/// the kernel recorded, and a socket that turns out not to be in the fast path must pass everything through.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class RegistrationOnFirstUseTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task A_redirected_connection_carries_its_bytes_before_either_end_reads_its_registration()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, reportsConsumption: true, onFirstUse: true);
        SocketRegistration client = pair.ClientRegistration, server = pair.ServerRegistration;
        int size = (int)Math.Min(engine.ReportStep / 2, 64 << 10); // below the first report, within the bound

        byte[] request = Pattern(size, 3), response = Pattern(size, 5);
        await client.WaitToSendAsync(size);
        await pair.Client.SendAsync(request);
        Assert.Equal(request, await ReceiveAsync(pair.Server, size, server));
        await server.WaitToSendAsync(size);
        await pair.Server.SendAsync(response);
        Assert.Equal(response, await ReceiveAsync(pair.Client, size, client));

        Assert.False(client.IsSettled, "the client's registration was read before anything needed it");
        Assert.False(server.IsSettled, "the server's registration was read before anything needed it");
        AccelerationStatistics stats = engine.GetStatistics();
        Assert.Equal((2L * size, 0L), (stats.RedirectedBytes, stats.TcpBytes));

        // Asked now, each end reports what the kernel did then, and its figures.
        Assert.Equal(RegistrationOutcome.Registered, client.Outcome);
        Assert.True(client.IsSettled);
        Assert.Equal((DirectionPath.Redirected, (long)size), (server.GetStatistics().Path, server.GetStatistics().RedirectedBytes));
        Assert.True(server.IsRegistered);
        Assert.False(client.TryLeaveFastPath()); // its server is in the fast path: it stays
        Assert.False(client.PassesThrough || server.PassesThrough);
    }

    [KernelFact]
    public async Task A_client_whose_server_is_not_in_the_fast_path_learns_it_and_leaves_with_its_one_check()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, prepareServer: false, onFirstUse: true);
        SocketRegistration client = pair.ClientRegistration;

        await pair.Client.SendAsync(new byte[100]);
        Assert.Equal(100, await pair.Server.ReceiveAsync(new byte[200]));
        Assert.False(client.IsSettled);
        Assert.True(client.TryLeaveFastPath());
        Assert.True(client.IsSettled && client.HasLeft && client.PassesThrough);
        Assert.Equal(RegistrationOutcome.Registered, client.Outcome); // it was in the map, and has left it

        await Wire.ExchangeBothWaysAsync(pair.Client, pair.Server, size: 1 << 20);
        Assert.Contains("peer was not in the fast path", client.GetStatistics().TcpReason);
    }

    [KernelFact]
    public async Task A_server_end_whose_client_is_not_in_the_fast_path_learns_it_at_its_first_wait_and_passes_through()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var pair = await SocketPair.ConnectAsync(engine, prepareClient: false, onFirstUse: true);
        SocketRegistration server = pair.ServerRegistration;

        server.ReportConsumed(engine.ReportStep - 1);
        Assert.True(server.WaitToSendAsync(engine.BacklogBytes).IsCompletedSuccessfully);
        Assert.False(server.IsSettled); // nothing needed it yet

        // More than the bound without a report: only a socket in the fast path would wait for its reader, so this one
        // reads its registration, and goes on at once.
        Assert.True(server.WaitToSendAsync(engine.BacklogBytes).IsCompletedSuccessfully);
        Assert.True(server.IsSettled && server.PassesThrough);
        Assert.Equal(RegistrationOutcome.PeerNotAccelerated, server.Outcome);
        Assert.False(server.TryLeaveFastPath());
        await Wire.ExchangeBothWaysAsync(pair.Client, pair.Server, size: 1 << 20);
    }

    [KernelFact]
    public async Task A_registration_first_read_after_its_socket_closed_says_so_and_does_not_throw()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        var pair = await SocketPair.ConnectAsync(engine, onFirstUse: true);
        pair.Dispose();

        Assert.Equal(RegistrationOutcome.NotEstablished, pair.ClientRegistration.Outcome);
        Assert.Equal(DirectionPath.Tcp, pair.ServerRegistration.GetStatistics().Path);
        Assert.Equal(RegistrationOutcome.NotEstablished, pair.ServerRegistration.Outcome);
        Assert.False(pair.ClientRegistration.TryLeaveFastPath());
        Assert.True(pair.ServerRegistration.WaitToSendAsync(4 * engine.BacklogBytes).IsCompletedSuccessfully);
    }

    private static byte[] Pattern(int size, int seed) => Enumerable.Range(0, size).Select(i => (byte)(i * seed + (i >> 8))).ToArray();

    private static async Task<byte[]> ReceiveAsync(System.Net.Sockets.Socket socket, int size, SocketRegistration registration)
    {
        byte[] buffer = new byte[size];
        for (int got = 0; got < size;)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(got));
            Assert.True(n > 0, "the connection ended");
            got += n;
            registration.ReportConsumed(got);
        }

        return buffer;
    }
}
