using System.Net;
using System.Net.Sockets;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

[Collection(KernelCollection.Name)]
public sealed class FastPathTests(KernelFixture fixture)
{
    [KernelFact]
    public void Engine_starts_enabled_and_pins_owner_only_objects()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        string dir = Directory.GetDirectories(Path.Combine(fixture.Environment.PinRoot, "accel")).Single();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        Assert.Contains(Path.Combine(dir, "accel_sockhash"), Directory.GetFiles(dir));
    }

    [KernelFact]
    public async Task Prepared_pair_is_redirected_both_ways_and_counted()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.True(engine.PrepareListener(listener));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.True(engine.PrepareConnect(client));
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();

        var c = engine.Register(client);
        var s = engine.Register(server);
        Assert.Equal(RegistrationOutcome.Registered, c.Outcome);
        Assert.Equal(RegistrationOutcome.Registered, s.Outcome);

        byte[] ping = "hello over the fast path"u8.ToArray();
        await client.SendAsync(ping);
        byte[] buf = new byte[ping.Length];
        Assert.Equal(ping.Length, await server.ReceiveAsync(buf));
        Assert.Equal(ping, buf);
        await server.SendAsync(buf);
        Assert.Equal(ping.Length, await client.ReceiveAsync(buf));

        var cs = c.GetStatistics();
        var ss = s.GetStatistics();
        Assert.Equal(DirectionPath.Redirected, cs.Path);
        Assert.Equal(DirectionPath.Redirected, ss.Path);
        Assert.Equal(ping.Length, cs.RedirectedBytes);
        Assert.Equal(0, cs.TcpBytes);
        var stats = engine.GetStatistics();
        Assert.True(stats.RegisteredSockets >= 2);
        Assert.True(stats.RedirectedBytes >= 2 * ping.Length);
    }
}
