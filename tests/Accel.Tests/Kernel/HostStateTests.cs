using Accel.Testing;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

[Collection(KernelCollection.Name)]
public sealed class HostStateTests(KernelFixture fixture)
{
    /// <summary>The host-wide view lists the services that share the map, with their own figures, and forgets
    /// a service that stopped.</summary>
    [KernelFact]
    public async Task The_host_wide_view_shows_each_service_its_sockets_and_bytes()
    {
        var options = fixture.Environment.Options();
        options.ServiceName = "host-state-test";
        var engine = AccelerationEngine.Start(options);
        using (var pair = await SocketPair.ConnectAsync(engine))
        {
            await pair.Client.SendAsync(new byte[1000]);
            Assert.Equal(1000, await pair.Server.ReceiveAsync(new byte[2000]));

            SharedFastPath path = Assert.Single(AccelerationHostState.Read(fixture.Environment.PinRoot), p => p.IsThisVersion);
            Assert.True(path.Sockets >= 2);
            SharedService me = Assert.Single(path.Services, s => s.Name == "host-state-test");
            Assert.Equal(Environment.ProcessId, me.Pid);
            Assert.Equal(engine.GetStatistics(), me.Statistics);
            Assert.Equal(1000, me.Statistics.RedirectedBytes);
        }

        engine.Dispose();
        Assert.DoesNotContain(AccelerationHostState.Read(fixture.Environment.PinRoot).SelectMany(p => p.Services), s => s.Name == "host-state-test");
    }
}
