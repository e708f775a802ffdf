using System.Net;
using System.Net.Sockets;
using Accel.Native.Interop;
using Accel.Testing;
using Accel.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// Two services built with different versions of the library on one host. Each version pins its objects in a
/// directory named after its BPF object's hash, so versions never mix programs on one map: each keeps
/// working, services of one version share the fast path, and a connection between versions uses TCP.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class VersionTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task Services_of_different_versions_each_work_and_talk_over_TCP()
    {
        using var current = AccelerationEngine.Start(fixture.Environment.Options());
        using var other = AccelerationEngine.Start(fixture.Environment.Options(), NullLogger.Instance, LinuxKernel.Instance, ObjectVariants.WithMapSize("accel_consumed", delta: -1));
        Assert.True(current.IsEnabled, current.Status.Message);
        Assert.True(other.IsEnabled, other.Status.Message);
        Assert.NotEqual(current.Kernel!.Store.Directory, other.Kernel!.Store.Directory);

        // Within each version: redirected.
        foreach (var engine in new[] { current, other })
        {
            using var same = await Infrastructure.SocketPair.ConnectAsync(engine);
            await Wire.ExchangeBothWaysAsync(same.Client, same.Server);
            Assert.Equal(DirectionPath.Redirected, same.ClientRegistration.GetStatistics().Path);
        }

        // Between versions: each socket is opted in, but to a different fast path. The client is in its version's map
        // and finds no peer there at its first send (TCP, with the reason); the accepted socket's version has no entry
        // for the client, so the kernel leaves it out of its map.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        other.PrepareListener(listener);
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        current.PrepareConnect(client);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();
        var c = current.Register(client);
        var s = other.Register(server);
        Assert.Equal((RegistrationOutcome.Registered, RegistrationOutcome.PeerNotAccelerated), (c.Outcome, s.Outcome));
        await Wire.ExchangeBothWaysAsync(client, server);
        Assert.Equal((DirectionPath.Tcp, DirectionPath.Tcp), (c.GetStatistics().Path, s.GetStatistics().Path));
        Assert.Contains("peer was not in the fast path", c.GetStatistics().TcpReason);
    }
}
