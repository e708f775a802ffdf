using System.Diagnostics;
using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// Two services in different network namespaces on one host, joined by veth, as two pods on a node are.
/// Both share the pinned objects (same bpffs, same cgroup); every byte is checked both ways.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class NamespaceTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const int Connections = 200;

    [KernelFact(Tools = "ip:iproute2")]
    public async Task Services_in_two_namespaces_share_the_fast_path_over_veth()
    {
        using var net = NamespacePair.Create();
        var (server, client) = await RunAsync(net, serverAccel: true, ranges: "");

        AssertAllCorrect(server, client);
        Assert.All(client.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Redirected"), (r.Outcome, r.Path)));
        Assert.All(server.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Redirected"), (r.Outcome, r.Path)));
        // Per-connection figures and the process-wide ones agree.
        Assert.Equal(server.Results.Sum(r => r.RedirectedBytes), server.Statistics.RedirectedBytes);
        Assert.Equal(client.Results.Sum(r => r.RedirectedBytes), client.Statistics.RedirectedBytes);
        Assert.Equal(Connections, server.Statistics.RegisteredSockets);
        Assert.Equal(0, server.Statistics.TcpBytes);
    }

    [KernelFact(Tools = "ip:iproute2")]
    public async Task A_peer_without_the_library_gets_plain_TCP_and_every_byte()
    {
        using var net = NamespacePair.Create();
        var (server, client) = await RunAsync(net, serverAccel: false, ranges: net.Range);

        AssertAllCorrect(server, client);
        Assert.All(server.Results, r => Assert.Equal(nameof(RegistrationOutcome.Disabled), r.Outcome));
        Assert.All(client.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Tcp", 0L), (r.Outcome, r.Path, r.RedirectedBytes)));
    }

    /// <summary>Every engine publishes its own addresses host-wide, so two services that both use the library
    /// find each other without configuration (the first test passes a range, but needs none). A peer that
    /// does not use the library, outside the configured ranges, is taken for a remote one: the client's socket
    /// is left out of the map and pays nothing.</summary>
    [KernelFact(Tools = "ip:iproute2")]
    public async Task Without_the_pod_range_a_peer_that_does_not_use_the_library_is_left_alone()
    {
        using var net = NamespacePair.Create();
        var (server, client) = await RunAsync(net, serverAccel: false, ranges: "");

        AssertAllCorrect(server, client);
        Assert.All(client.Results, r => Assert.Equal(nameof(RegistrationOutcome.PeerNotOnHost), r.Outcome));
        Assert.Equal(Connections, client.Statistics.SkippedRemotePeers);
        Assert.Equal(0, client.Statistics.RedirectedBytes + client.Statistics.TcpBytes);
    }

    /// <summary>Two services as containers run them on a cgroup v2 host: each in a cgroup of its own, below one
    /// where the program is already attached (here the test's; on a node, a service running in an ancestor),
    /// with a private cgroup namespace and its own cgroup2 mount, so each finds "its" cgroup as "/" and attaches
    /// there. The program then runs twice for each socket (once per attachment): the second run must not undo
    /// the first.</summary>
    [KernelFact(Tools = "ip:iproute2")]
    public async Task Services_in_containers_with_their_own_cgroup_namespace_share_the_fast_path()
    {
        using var net = NamespacePair.Create();
        using var ancestor = AccelerationEngine.Start(fixture.Environment.Options()); // attaches to the test's cgroup
        Assert.True(ancestor.IsEnabled, ancestor.Status.Message);
        string[] containers = [.. new[] { "a", "b" }.Select(n => Path.Combine(fixture.Environment.CgroupPath, $"container-{n}-{Guid.NewGuid():N}"[..24]))];
        foreach (string c in containers)
        {
            Directory.CreateDirectory(c);
        }

        try
        {
            var (s, c) = await RunAsync(net, serverAccel: true, ranges: "",
                (ns, args) => NamespacePeers.StartInContainer(ns, fixture.Environment, ns == net.A ? containers[0] : containers[1], args));

            AssertAllCorrect(s, c);
            Assert.All(c.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Redirected"), (r.Outcome, r.Path)));
            Assert.All(s.Results, r => Assert.Equal((nameof(RegistrationOutcome.Registered), "Redirected"), (r.Outcome, r.Path)));

            // Each attached the program to its own cgroup, found through its own cgroup namespace.
            string pins = Path.Combine(fixture.Environment.PinRoot, "accel", Accel.Native.Loading.EmbeddedObjects.Accel.Abi);
            foreach (string container in containers)
            {
                Assert.Equal(0, Accel.Native.Interop.LinuxKernel.Instance.Stat(container, out var facts));
                Assert.True(File.Exists(Path.Combine(pins, $"link_cgroup_{facts.Inode}")), $"no link pinned for {container}");
            }
        }
        finally
        {
            foreach (string c in containers)
            {
                Directory.Delete(c);
            }
        }
    }

    /// <summary>A server peer in namespace B and a client peer in namespace A, started by <paramref name="start"/>
    /// (namespace, arguments): by default as processes of the test's cgroup.</summary>
    private async Task<(StressPeerOutput Server, StressPeerOutput Client)> RunAsync(NamespacePair net, bool serverAccel, string ranges,
        Func<string, string[], Process>? start = null)
    {
        start ??= (ns, args) => NamespacePeers.Start(ns, fixture.Environment, args);
        string[] common = ["--connections", Connections.ToString(), "--messages", "16", "--max-size", "8192", "--address", net.AddressB, "--ranges", ranges];
        using var server = start(net.B, [.. new[] { "serve", "--accel", serverAccel ? "true" : "false" }, .. common]);
        int port = await Peer.ReadPortAsync(server);
        using var client = start(net.A, [.. new[] { "connect", "--ports", $"{port},{port},{port}", "--mixed", "false" }, .. common]);
        StressPeerOutput c = await Peer.ResultAsync(client);
        StressPeerOutput s = await Peer.ResultAsync(server);
        output.WriteLine($"server: {s.Statistics}");
        output.WriteLine($"client: {c.Statistics}");
        return (s, c);
    }

    private static void AssertAllCorrect(StressPeerOutput server, StressPeerOutput client)
    {
        Assert.Equal(Connections, server.Results.Length);
        Assert.Equal(Connections, client.Results.Length);
        Assert.Empty(server.Results.Concat(client.Results).Where(r => r.Error is not null).Select(r => r.Error).Take(10));
    }
}
