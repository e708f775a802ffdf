using System.Net;
using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Interop;
using Accel.Native.Loading;
using Accel.Native.Pinning;
using Accel.Testing;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

/// <summary>
/// The host-wide table of possibly same-host peers keeps an entry while a running service needs it, and no longer:
/// before, it kept the addresses of every container that ever ran on the host, and where addresses are not reused
/// (IPv6 pod ranges, IPAM that walks its whole range) it filled up, after which new services' peers used TCP.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class PeerClaimTests(KernelFixture fixture)
{
    private string Directory => Path.Combine(fixture.Environment.PinRoot, "accel", EmbeddedObjects.Accel.Abi);

    /// <summary>A service that stops takes out what only it published; what another running service published too
    /// stays until that one stops.</summary>
    [KernelFact]
    public void A_service_that_stops_takes_out_the_entries_only_it_published()
    {
        var first = AccelerationEngine.Start(Options(hostAddresses: false, "10.123.0.0/24"));
        var second = AccelerationEngine.Start(Options(hostAddresses: false, "10.123.0.0/24", "10.125.0.0/16", "fd12:3456::/64"));
        Assert.True(first.IsEnabled && second.IsEnabled, second.Status.Message);
        Assert.Subset(Entries(), Set("10.123.0.0/24", "10.125.0.0/16", "fd12:3456::/64"));

        second.Dispose();
        Assert.Contains(Entry("10.123.0.0/24"), Entries());
        Assert.DoesNotContain(Entry("10.125.0.0/16"), Entries());
        Assert.DoesNotContain(Entry("fd12:3456::/64"), Entries());

        first.Dispose();
        Assert.DoesNotContain(Entry("10.123.0.0/24"), Entries());
        Assert.DoesNotContain(System.IO.Directory.GetDirectories(Directory, InstanceLeases.Prefix + "*"), d => InstanceLeases.IsEnded(LinuxKernel.Instance, d));
    }

    /// <summary>A killed service (SIGKILL, OOM) cannot take out its entries: the next service to start does, except
    /// those a running service published too, and says so.</summary>
    [KernelFact]
    public async Task The_entries_of_a_killed_service_go_at_the_next_start_and_shared_ones_stay()
    {
        using var running = AccelerationEngine.Start(Options(hostAddresses: true, "10.123.0.0/24"));
        Assert.True(running.IsEnabled, running.Status.Message);
        using var peer = Peer.Start(fixture.Environment, [], "serve", "--connections", "1", "--ranges", "10.123.0.0/24,10.126.0.9/32");
        try
        {
            await Peer.ReadPortAsync(peer);
            Assert.Subset(Entries(), Set("10.123.0.0/24", "10.126.0.9/32"));
        }
        finally
        {
            peer.Kill();
            await peer.WaitForExitAsync();
        }

        Assert.Contains(Entry("10.126.0.9/32"), Entries());   // nobody has looked yet
        var logger = new RecordingLogger();
        using (var next = AccelerationEngine.Start(Options(hostAddresses: false), logger))
        {
            Assert.True(next.IsEnabled, next.Status.Message);
            Assert.DoesNotContain(Entry("10.126.0.9/32"), Entries());
            Assert.Contains(Entry("10.123.0.0/24"), Entries());   // the running service's too
        }

        // The killed one's host addresses are the running one's as well (one host): only its own range went.
        Assert.Contains(logger.Entries, e => e.Message.Contains("1 service record(s) of processes that ended without stopping, 1 same-host peer address(es) that only they had published", StringComparison.Ordinal));
    }

    /// <summary>Services that start, stop and are killed at the same time never take out what a running service
    /// published, and leave nothing of their own behind: four rounds of four processes at once (two that stop by
    /// themselves, two killed once they listen), each publishing a range the running service published too and one of
    /// its own. Nothing publishes again, so an entry taken out at any moment would be missing at the end of the round.</summary>
    [KernelFact]
    public async Task Services_starting_stopping_and_killed_at_once_leave_a_running_services_entries_and_none_of_theirs()
    {
        using var running = AccelerationEngine.Start(Options(hostAddresses: true, "10.123.0.0/24", "10.128.0.0/16"));
        Assert.True(running.IsEnabled, running.Status.Message);
        HashSet<string> before = Entries();
        for (int round = 0; round < 4; round++)
        {
            var peers = Enumerable.Range(0, 4).Select(i => Peer.Start(fixture.Environment, [],
                i < 2 ? "status" : "serve", "--connections", "1", "--ranges", $"10.123.0.0/24,10.129.{round}.{i}/32")).ToList();
            try
            {
                foreach (var serving in peers[2..])
                {
                    await Peer.ReadPortAsync(serving);
                    serving.Kill();
                }

                foreach (var peer in peers)
                {
                    await peer.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
                }

                Assert.All(peers[..2], p => Assert.Equal(0, p.ExitCode));
            }
            finally
            {
                foreach (var peer in peers)
                {
                    if (!peer.HasExited)
                    {
                        peer.Kill();
                    }

                    peer.Dispose();
                }
            }

            Assert.Subset(Entries(), before);
        }

        using (AccelerationEngine.Start(Options(hostAddresses: false)))
        {
            // Its start forgets the last round's killed services.
        }

        Assert.Equal(before, Entries());
    }

    /// <summary>A running instance that does not claim its entries (a build of the library from before claims, on the
    /// same pins) may need any entry: while one runs, a service that stops removes nothing.</summary>
    [KernelFact]
    public void Nothing_is_removed_while_a_running_instance_does_not_claim_its_entries()
    {
        var engine = AccelerationEngine.Start(Options(hostAddresses: false, "10.127.0.0/24"));   // makes the pin directory
        Assert.True(engine.IsEnabled, engine.Status.Message);
        ulong unclaiming = BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)) | 1;
        KernelFd lease = InstanceLeases.Hold(LinuxKernel.Instance, Directory, unclaiming) ?? throw new InvalidOperationException("no lease");
        try
        {
            engine.Dispose();
            Assert.Contains(Entry("10.127.0.0/24"), Entries());
        }
        finally
        {
            InstanceLeases.Release(lease, Directory, unclaiming);
            Delete(Entry("10.127.0.0/24"));
        }
    }

    private AccelerationEngineOptions Options(bool hostAddresses, params string[] ranges)
    {
        var options = fixture.Environment.Options();
        options.IncludeHostAddresses = hostAddresses;
        foreach (string range in ranges)
        {
            options.SameHostPeerRanges.Add(range);
        }

        return options;
    }

    private static HashSet<string> Set(params string[] ranges) => [.. ranges.Select(Entry)];

    /// <summary>A range as the table holds it: IPv6, IPv4 under ::ffff:0:0/96.</summary>
    private static string Entry(string range)
    {
        IPNetwork n = IPNetwork.Parse(range);
        return n.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? new IPNetwork(n.BaseAddress.MapToIPv6(), n.PrefixLength + 96).ToString()
            : n.ToString();
    }

    /// <summary>Every entry of the table, exactly (a lookup in an LPM trie would match a wider entry too).</summary>
    private HashSet<string> Entries() => WithTable((bpf, table) => bpf.Keys(table, sizeof(uint) + 16)
        .Select(k => new IPNetwork(new IPAddress(k.AsSpan(4, 16)), (int)BitConverter.ToUInt32(k, 0)).ToString())
        .ToHashSet());

    private void Delete(string entry)
    {
        IPNetwork n = IPNetwork.Parse(entry);
        byte[] key = [.. BitConverter.GetBytes((uint)n.PrefixLength), .. n.BaseAddress.GetAddressBytes()];
        WithTable((bpf, table) => bpf.TryDelete(table, key));
    }

    private T WithTable<T>(Func<BpfSyscalls, KernelFd, T> use)
    {
        var bpf = new BpfSyscalls(LinuxKernel.Instance);
        Assert.True(bpf.TryGetPinned(Path.Combine(Directory, AbiNames.LocalPrefixes), out KernelFd? table) >= 0);
        using (table)
        {
            return use(bpf, table!);
        }
    }
}
