using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Interop;
using Accel.Native.Loading;
using Accel.Native.Pinning;
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
            Assert.InRange(path.PeerAddresses, 1, path.PeerAddressCapacity);   // at least this host's own
            Assert.Equal(1024, path.PeerAddressCapacity);
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

    /// <summary>A service killed (SIGKILL, OOM) cannot remove its record. The host-wide view leaves it out at
    /// once, because the instance's lease (a lock the kernel drops with the process) is free, and the next
    /// service to start removes its record and figures from the maps.</summary>
    [KernelFact]
    public async Task A_killed_service_leaves_the_view_at_once_and_its_record_goes_at_the_next_start()
    {
        string name = "killed-" + Guid.NewGuid().ToString("N")[..8];
        using var peer = Peer.Start(fixture.Environment, [], "serve", "--connections", "1", "--service-name", name);
        using var stop = new PeerKiller(peer);
        await Peer.ReadPortAsync(peer);

        string directory = Path.Combine(fixture.Environment.PinRoot, "accel", EmbeddedObjects.Accel.Abi);
        Assert.Single(Services(), s => s.Name == name);
        int recordsWithIt = ServiceRecords(directory);

        peer.Kill();
        await peer.WaitForExitAsync();

        Assert.DoesNotContain(Services(), s => s.Name == name);
        Assert.Equal(recordsWithIt, ServiceRecords(directory));   // the map still holds it
        Assert.Single(Directory.GetDirectories(directory, "instance_*"), d => IsFree(d));

        var logger = new RecordingLogger();
        using (var next = AccelerationEngine.Start(fixture.Environment.Options(), logger))
        {
            Assert.True(next.IsEnabled, next.Status.Message);
            Assert.Equal(recordsWithIt, ServiceRecords(directory));   // the killed one's out, the new one's in
        }

        Assert.Equal(recordsWithIt - 1, ServiceRecords(directory));
        Assert.DoesNotContain(Directory.GetDirectories(directory, "instance_*"), d => IsFree(d));
        Assert.Contains(logger.Entries, e => e.Message.Contains("1 service record(s) of processes that ended without stopping", StringComparison.Ordinal));
    }

    private SharedService[] Services() =>
        [.. AccelerationHostState.Read(fixture.Environment.PinRoot).Single(p => p.IsThisVersion).Services];

    private static int ServiceRecords(string directory)
    {
        var bpf = new BpfSyscalls(LinuxKernel.Instance);
        Assert.True(bpf.TryGetPinned(Path.Combine(directory, AbiNames.Services), out KernelFd? map) >= 0);
        using (map)
        {
            return bpf.Keys(map!, sizeof(ulong)).Count();
        }
    }

    /// <summary>Nobody holds the instance directory's lock.</summary>
    private static bool IsFree(string instanceDirectory) => InstanceLeases.IsEnded(LinuxKernel.Instance, instanceDirectory);

    /// <summary>Kills the peer if the test ends before it does.</summary>
    private sealed class PeerKiller(System.Diagnostics.Process peer) : IDisposable
    {
        public void Dispose()
        {
            if (!peer.HasExited)
            {
                peer.Kill();
                peer.WaitForExit();
            }
        }
    }
}
