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
            Assert.Equal(Environment.MachineName, me.Host);
            Assert.Equal(engine.GetStatistics(), me.Statistics);
            Assert.Equal(1000, me.Statistics.RedirectedBytes);
        }

        engine.Dispose();
        Assert.DoesNotContain(AccelerationHostState.Read(fixture.Environment.PinRoot).SelectMany(p => p.Services), s => s.Name == "host-state-test");
    }

    /// <summary>A name longer than the map's 31 bytes is cut between characters, never inside one.</summary>
    [KernelFact]
    public void A_long_service_name_is_cut_between_characters()
    {
        var options = fixture.Environment.Options();
        options.ServiceName = "cut-" + new string('\u00e9', 20);   // 4 + 40 bytes of UTF-8
        using var engine = AccelerationEngine.Start(options);

        SharedService me = Assert.Single(
            AccelerationHostState.Read(fixture.Environment.PinRoot).Single(p => p.IsThisVersion).Services,
            s => s.Name.StartsWith("cut-", StringComparison.Ordinal));
        Assert.Equal("cut-" + new string('\u00e9', 13), me.Name);  // 4 + 26 bytes: one more would need 32
    }
}
