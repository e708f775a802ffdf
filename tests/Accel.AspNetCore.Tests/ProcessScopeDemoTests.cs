using System.Diagnostics;
using System.Text.Json;
using Accel.ScopeDemo;
using Accel.Testing;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// Process scope with real third-party clients, as the example runs them (examples/Accel.ScopeDemo): a client
/// process with <c>Scope = Process</c> calls a backend that uses the library through StackExchange.Redis (a
/// Redis-protocol cache hosted in Kestrel), Npgsql (a PostgreSQL-protocol stand-in hosted in Kestrel), a gRPC channel with client-side round-robin load balancing, and a raw
/// TcpClient; every value and byte is checked, and the backend's side of each connection reports it redirected with
/// nothing through TCP. The same client then calls a cache that does not use the library: TCP, nothing lost.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class ProcessScopeDemoTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const string Redirected = "Registered Redirected";

    [KernelFact]
    public async Task Third_party_clients_of_a_process_in_scope_take_the_fast_path_and_a_peer_without_the_library_stays_on_TCP()
    {
        using Process demo = HttpPeerProcess.StartService(fixture.Environment, null, "Accel.ScopeDemo.dll");
        string printed = await HttpPeerProcess.RunToEndAsync(demo, TimeSpan.FromMinutes(3), output);
        string line = printed.Split('\n').Single(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        DemoResult result = JsonSerializer.Deserialize<DemoResult>(line["RESULT ".Length..])!;

        Assert.Equal((0, 0, 0, 0, null), (result.RedisErrors, result.NpgsqlErrors, result.TcpClientErrors, result.PlainErrors, result.GrpcError));
        // Npgsql moved 8 MiB each way on one connection, twice the bound.
        Assert.StartsWith(Redirected, result.Npgsql);
        Assert.EndsWith("tcp=0 B", result.Npgsql);
        // StackExchange.Redis moved 8 MiB each way, twice the backlog bound: the client's reads were reported by the tracker.
        Assert.StartsWith(Redirected, result.Redis);
        Assert.EndsWith("tcp=0 B", result.Redis);
        Assert.True(result.Before.TrackedReports > 0, "the tracker reported nothing");
        // The load-balanced channel's connections, as the backend saw them on four calls.
        Assert.Equal(4, result.Grpc.Count);
        Assert.All(result.Grpc, g => Assert.StartsWith(Redirected, g));
        Assert.All(result.Grpc, g => Assert.EndsWith("tcp=0 B", g));
        Assert.StartsWith(Redirected, result.TcpClient);
        // Everything of the client process so far went through the fast path.
        Assert.Equal(0, result.Before.TcpBytes);
        Assert.True(result.Before.RedirectedBytes > 8L << 20, $"redirected {result.Before.RedirectedBytes} B");
        // The cache without the library: the client's sockets were opted in, but its peer was not: TCP. Their first sends
        // went through the sk_msg program, for a verdict of TCP; then the read tracker took them out of the socket map.
        Assert.Equal("a plain socket, not in the fast path", result.Plain);
        Assert.True(result.After.TcpBytes > 0, "no send to the cache without the library went through the sk_msg program");
        Assert.True(result.After.LeftPlainPeers > result.Before.LeftPlainPeers, "no socket left the map");
        Assert.Equal(result.Before.RedirectedBytes, result.After.RedirectedBytes);
    }
}
