using System.Net;
using System.Net.Sockets;
using Accel.AspNetCore.Internal;
using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// The HttpClient side's stream over a real redirected connection: a zero-byte read right after a read that filled its
/// buffer completes at once (it saves HTTP/2's peek before every frame), and only that one: a second zero-byte read, and
/// one after a read that did not fill its buffer, wait for data as on a plain socket, so an idle reader never spins.
/// (Once in CI, under the load of the other test projects, such a wait ended within 200 ms before the server had sent
/// anything more, cause not known; so the waits allow a stray completion or two, which a spin would still exceed by far,
/// and the test ends by checking that the client got every byte once and nothing more.)
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class AcceleratedNetworkStreamTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task Only_the_first_zero_byte_read_after_a_full_read_completes_without_data()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.True(engine.PrepareListener(listener, reportsConsumption: true));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Assert.True(engine.PrepareConnect(client, reportsConsumption: true));
        await client.ConnectAsync(listener.LocalEndPoint!);
        using Socket server = await listener.AcceptAsync();
        SocketRegistration registration = engine.Register(client);
        Assert.True(registration.IsRegistered, registration.Detail);
        SocketRegistration serverRegistration = engine.Register(server);
        Assert.True(serverRegistration.IsRegistered, serverRegistration.Detail);
        await using var stream = new AcceleratedNetworkStream(client, registration, maxChunk: 1 << 20); // it writes nothing here

        byte[] sent = Enumerable.Range(0, 3 * 16384 + 100).Select(i => (byte)(i * 7 + (i >> 9))).ToArray();
        var received = new List<byte>();
        byte[] buffer = new byte[16384];
        async Task ReadFullAsync(int count)
        {
            for (int got = 0; got < count;)
            {
                int n = await stream.ReadAsync(buffer.AsMemory(got, count - got));
                Assert.True(n > 0, "the connection ended");
                got += n;
                received.AddRange(buffer.AsSpan(got - n, n).ToArray());
            }
        }

        // Exactly one buffer's worth arrives and is read: the buffer is full and nothing more is queued.
        Assert.Equal(16384, await server.SendAsync(sent.AsMemory(0, 16384)));
        await ReadFullAsync(16384);
        Assert.True(stream.ReadAsync(Memory<byte>.Empty).IsCompleted, "the zero-byte read after a full read did not complete at once");
        await AssertWaitsForDataAsync(stream, server, client, sent.AsMemory(16384, 2 * 16384));

        // Two full reads of what is queued, each followed by a zero-byte read that completes at once.
        await ReadFullAsync(16384);
        Assert.True(stream.ReadAsync(Memory<byte>.Empty).IsCompleted);
        await ReadFullAsync(16384);
        Assert.True(stream.ReadAsync(Memory<byte>.Empty).IsCompleted);

        // A read that does not fill its buffer: the zero-byte read after it waits for data.
        await AssertWaitsForDataAsync(stream, server, client, sent.AsMemory(3 * 16384, 60));
        int partial = await stream.ReadAsync(buffer);
        Assert.Equal(60, partial);
        received.AddRange(buffer.AsSpan(0, 60).ToArray());
        await AssertWaitsForDataAsync(stream, server, client, sent.AsMemory(3 * 16384 + 60));
        await ReadFullAsync(40);

        Assert.Equal(sent, received.ToArray());
        Assert.Equal(0, client.Available); // nothing more than was sent
        AccelerationStatistics stats = engine.GetStatistics();
        Assert.Equal((DirectionPath.Redirected, 0L), (serverRegistration.GetStatistics().Path, stats.TcpBytes));
        Assert.True(stats.RedirectedBytes >= sent.Length, stats.ToString());
    }

    /// <summary>Zero-byte reads while nothing is queued wait for data: within 300 ms at most two complete (a wake-up of
    /// the socket's wait with nothing to read may end one, as it may on TCP, and costs the caller one read that then
    /// waits), where a reader that spun would complete them by the thousand. Then the server sends
    /// <paramref name="next"/>, and the pending one completes.</summary>
    private static async Task AssertWaitsForDataAsync(AcceleratedNetworkStream stream, Socket server, Socket client, ReadOnlyMemory<byte> next)
    {
        int early = 0;
        Task<int> zeroByteRead = stream.ReadAsync(Memory<byte>.Empty).AsTask();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMilliseconds(300))
        {
            if (await Task.WhenAny(zeroByteRead, Task.Delay(50)) == zeroByteRead)
            {
                early++;
                Assert.True(early <= 2, $"{early} zero-byte reads completed with nothing to read ({client.Available} B readable)");
                zeroByteRead = stream.ReadAsync(Memory<byte>.Empty).AsTask();
            }
        }

        Assert.Equal(next.Length, await server.SendAsync(next));
        Assert.Equal(0, await zeroByteRead.WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
