using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Accel.Testing;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// Bodies far larger than MaxRedirectedBacklogBytes (4 MiB): Kestrel's writes wait for the client to read
/// (pacing) instead of moving the connection to TCP, so a pooled connection, and every later request on it, stays in
/// the fast path. Every byte is checked.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class LargeBodyTests(KernelFixture fixture, ITestOutputHelper output)
{
    private static readonly long[] MixedSizes = [0, 1024, 64 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20];

    [KernelTheory]
    [InlineData("h1", 4, 64L << 20, 200)]
    [InlineData("h2c", 4, 64L << 20, 200)]
    [InlineData("h2c", 1, 1L << 30, 1000)]
    public async Task Large_downloads_keep_a_pooled_connection_in_the_fast_path_for_the_requests_after_them(string client, int downloads, long size, int smallRequests)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient http = frontend.Client(client);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        FeatureView first = (await http.GetFromJsonAsync<FeatureView>("/feature", cts.Token))!;
        var before = await ServerBytesAsync(backend);

        var clock = Stopwatch.StartNew();
        for (int i = 0; i < downloads; i++)
        {
            using var response = await http.GetAsync($"/blocks/{size}", HttpCompletionOption.ResponseHeadersRead, cts.Token);
            if (i == 0)
            {
                await Task.Delay(300, cts.Token); // a reader that starts late: the writer must reach the bound and wait
            }

            Assert.Null(await Pattern.Blocks.VerifyAsync(await response.Content.ReadAsStreamAsync(cts.Token), size, cts.Token));
        }

        double seconds = clock.Elapsed.TotalSeconds;
        FeatureView afterDownloads = (await http.GetFromJsonAsync<FeatureView>("/feature", cts.Token))!;
        for (int i = 0; i < smallRequests; i++)
        {
            using var response = await http.GetAsync("/bytes/1024", cts.Token);
            Assert.Null(await Pattern.VerifyAsync(await response.Content.ReadAsStreamAsync(cts.Token), 1024, cts.Token));
        }

        FeatureView last = (await http.GetFromJsonAsync<FeatureView>("/feature", cts.Token))!;
        var after = await ServerBytesAsync(backend);
        double share = Share(before, after);
        output.WriteLine($"{client}: {downloads} x {size >> 20} MiB in {seconds:F1} s ({downloads * size / seconds / 1e6:F0} MB/s, pattern checked), then {smallRequests} x 1 KiB");
        output.WriteLine($"server: {after.Redirected - before.Redirected} B redirected, {after.Tcp - before.Tcp} B through TCP ({share:P1} redirected), {after.Paced - before.Paced} paced writes");
        output.WriteLine($"the connection: before {first}\n  after the downloads {afterDownloads}\n  at the end {last}");

        // One pooled connection carried it all, and it never left the fast path.
        Assert.Equal(first.Connection, last.Connection);
        Assert.Equal((nameof(DirectionPath.Redirected), 0L, null), (last.Path, last.TcpBytes, last.LeftFastPathAt));
        // The small requests after the downloads were redirected on that very connection.
        Assert.True(last.RedirectedBytes - afterDownloads.RedirectedBytes >= smallRequests * 1024L, $"{last.RedirectedBytes - afterDownloads.RedirectedBytes} B redirected for {smallRequests} small responses");
        Assert.True(share >= 0.95, $"{share:P1} of the server's bytes were redirected");
        if (client == "h1")
        {
            // HTTP/1.1 has no flow control of its own: the writer always gets ahead, so it must have waited. (HTTP/2's
            // window, which the client grows with its read rate, keeps some runs under the bound without waiting.)
            Assert.True(after.Paced > before.Paced, "the server never had to wait for the client: the test did not reach the bound");
        }
    }

    /// <summary>A body written in one piece, four times the bound: Kestrel's HTTP/1.1 hands it to the transport in one
    /// flush, which the transport sends in pieces that each wait for the reader, so the connection stays in the fast
    /// path (before it did, such a body moved the direction to TCP for good). Every byte is checked.</summary>
    [KernelTheory]
    [InlineData("h1", false)]
    [InlineData("h1", true)]
    [InlineData("h2c", false)]
    public async Task A_body_written_in_one_piece_larger_than_the_bound_keeps_the_connection_in_the_fast_path(string client, bool chunked)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient http = frontend.Client(client);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        FeatureView first = (await http.GetFromJsonAsync<FeatureView>("/feature", cts.Token))!;
        var before = await ServerBytesAsync(backend);
        int size = (16 << 20) + 12345; // not a whole number of the writer's pieces
        for (int i = 0; i < 3; i++)
        {
            using var response = await http.GetAsync($"/single/{size}?chunked={chunked}", HttpCompletionOption.ResponseHeadersRead, cts.Token);
            if (i == 0)
            {
                await Task.Delay(300, cts.Token); // a reader that starts late
            }

            Assert.Null(await Pattern.VerifyAsync(await response.Content.ReadAsStreamAsync(cts.Token), size, cts.Token));
        }

        FeatureView last = (await http.GetFromJsonAsync<FeatureView>("/feature", cts.Token))!;
        var after = await ServerBytesAsync(backend);
        output.WriteLine($"{client}{(chunked ? ", chunked" : "")}: server {after.Redirected - before.Redirected} B redirected, {after.Tcp - before.Tcp} B through TCP, {after.Paced - before.Paced} paced writes, {after.Degraded - before.Degraded} directions left the fast path\n  the connection: before {first}\n  at the end {last}");
        Assert.Equal(first.Connection, last.Connection);
        Assert.Equal((nameof(DirectionPath.Redirected), 0L, null), (last.Path, last.TcpBytes, last.LeftFastPathAt));
        Assert.Equal(before.Degraded, after.Degraded);
    }

    /// <summary>A client that reads 1 MiB of a body written in one piece and then goes away (HTTP/1.1: the connection
    /// closes; h2c: the stream is reset): the server's write, waiting between pieces, ends within seconds, and the
    /// server goes on serving such bodies in the fast path.</summary>
    [KernelTheory]
    [InlineData("h1")]
    [InlineData("h2c")]
    public async Task A_client_that_leaves_during_a_body_written_in_one_piece_ends_the_servers_write(string client)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient http = frontend.Client(client);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        int size = 64 << 20;
        using (var response = await http.GetAsync($"/single/{size}", HttpCompletionOption.ResponseHeadersRead, cts.Token))
        {
            Stream body = await response.Content.ReadAsStreamAsync(cts.Token);
            byte[] buffer = new byte[64 * 1024];
            for (long read = 0; read < 1 << 20;)
            {
                int n = await body.ReadAsync(buffer, cts.Token);
                Assert.True(n > 0, "the body ended early");
                read += n;
            }

            Assert.Equal(1, backend.ActiveSingles); // the server is still writing: the client has read 1 MiB of 64
        }

        var clock = Stopwatch.StartNew();
        while (backend.ActiveSingles > 0 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20, cts.Token);
        }

        output.WriteLine($"{client}: the server's write ended {clock.ElapsedMilliseconds} ms after the client left");
        Assert.Equal(0, backend.ActiveSingles);

        var before = await ServerBytesAsync(backend);
        using (var response = await http.GetAsync($"/single/{16 << 20}", HttpCompletionOption.ResponseHeadersRead, cts.Token))
        {
            Assert.Null(await Pattern.VerifyAsync(await response.Content.ReadAsStreamAsync(cts.Token), 16 << 20, cts.Token));
        }

        var after = await ServerBytesAsync(backend);
        Assert.True(Share(before, after) >= 0.95, $"{Share(before, after):P1} of the server's bytes were redirected");
    }

    /// <summary>Uploads written in a mix of write sizes, 1 B to 300 KiB: the client's stream sends bursts of large
    /// writes from behind, gathered into fewer sends, and goes back to sending in the caller's own call between them.
    /// The server checks every byte, and the client's bytes all went by the redirect.</summary>
    [KernelTheory]
    [InlineData("h1", true)]
    [InlineData("h1", false)]
    [InlineData("h2c", true)]
    public async Task Uploads_written_in_mixed_sizes_arrive_intact_and_redirected(string client, bool knownLength)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient http = frontend.Client(client);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        Assert.Equal("ok", await (await http.PostAsync("/check/1", new MixedWrites(1), cts.Token)).Content.ReadAsStringAsync(cts.Token));
        AccelerationStatistics before = frontend.Engine.GetStatistics();
        long size = (64 << 20) + 12345, sent = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 3; i++)
        {
            using var response = await http.PostAsync($"/check/{size}", new MixedWrites(size, knownLength), cts.Token);
            Assert.Equal("ok", await response.Content.ReadAsStringAsync(cts.Token));
            sent += size;
        }

        for (int i = 0; i < 100; i++)
        {
            using var response = await http.PostAsync("/check/1000", new MixedWrites(1000), cts.Token);
            Assert.Equal("ok", await response.Content.ReadAsStringAsync(cts.Token));
        }

        AccelerationStatistics after = frontend.Engine.GetStatistics();
        output.WriteLine($"{client}{(knownLength ? "" : ", chunked")}: 3 x {size} B uploaded in {clock.Elapsed.TotalSeconds:F1} s, then 100 x 1000 B, every byte checked; this process: {after.RedirectedBytes - before.RedirectedBytes} B in {after.RedirectedMessages - before.RedirectedMessages} redirected sends, {after.TcpBytes - before.TcpBytes} B through TCP");
        Assert.Equal(0, after.TcpBytes - before.TcpBytes);
        Assert.Equal(0, after.DegradedDirections - before.DegradedDirections);
        Assert.True(after.RedirectedBytes - before.RedirectedBytes >= sent, $"{after.RedirectedBytes - before.RedirectedBytes} B redirected for {sent} B of uploads");
    }

    /// <summary>A request body of the pattern, written in a repeating mix of sizes: single bytes, HTTP/2-frame-sized
    /// writes in a row, 64 KiB and 300 KiB writes, and small ones between them; without <paramref name="knownLength"/>
    /// HTTP/1.1 sends it chunked, a small chunk header before each write.</summary>
    private sealed class MixedWrites(long length, bool knownLength = true) : HttpContent
    {
        private static readonly int[] Sizes = [1, 16_393, 16_393, 16_393, 100, 65_536, 65_536, 300_000, 16_384, 7, 16_393, 40_000];

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            byte[] buffer = new byte[Sizes.Max()];
            long offset = 0;
            for (int i = 0; offset < length; i++)
            {
                int n = (int)Math.Min(Sizes[i % Sizes.Length], length - offset);
                for (int j = 0; j < n; j++)
                {
                    buffer[j] = Pattern.At(offset + j);
                }

                await stream.WriteAsync(buffer.AsMemory(0, n));
                offset += n;
            }
        }

        protected override bool TryComputeLength(out long l)
        {
            l = length;
            return knownLength;
        }
    }

    /// <summary>With <paramref name="onePiece"/>: every body written in one call (up to 16 MiB + 12345 B), so that the
    /// transport's splitting of large flushes runs on many connections at once.</summary>
    [KernelTheory]
    [InlineData("h1", "127.0.0.1", false)]
    [InlineData("h2c", "127.0.0.1", false)]
    [InlineData("h1", "::1", false)]
    [InlineData("h2c", "::1", false)]
    [InlineData("h1", "127.0.0.1", true)]
    [InlineData("h2c", "::1", true)]
    public async Task Bodies_from_0_B_to_64_MiB_32_at_a_time_are_redirected(string client, string address, bool onePiece)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true, address: IPAddress.Parse(address));
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient http = frontend.Client(client);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var before = await ServerBytesAsync(backend);
        long body = 0;
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, 32), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = cts.Token }, async (i, ct) =>
        {
            long size = onePiece ? Math.Min(MixedSizes[i % MixedSizes.Length], (16 << 20) + 12345) : MixedSizes[i % MixedSizes.Length];
            using var response = await http.GetAsync(onePiece ? $"/single/{size}" : $"/blocks/{size}", HttpCompletionOption.ResponseHeadersRead, ct);
            Assert.True(response.IsSuccessStatusCode, $"{size}: {(int)response.StatusCode}");
            Stream content = await response.Content.ReadAsStreamAsync(ct);
            string? error = onePiece ? await Pattern.VerifyAsync(content, size, ct) : await Pattern.Blocks.VerifyAsync(content, size, ct);
            Assert.True(error is null, $"{size}: {error}");
            Interlocked.Add(ref body, size);
        });

        var after = await ServerBytesAsync(backend);
        double share = Share(before, after);
        output.WriteLine($"{client} over {address}{(onePiece ? ", each in one piece" : "")}: {body >> 20} MiB of bodies in {clock.Elapsed.TotalSeconds:F1} s; server: {after.Redirected - before.Redirected} B redirected, {after.Tcp - before.Tcp} B through TCP ({share:P1}), {after.Paced - before.Paced} paced writes, {after.Degraded - before.Degraded} directions left the fast path");
        Assert.True(share >= 0.95, $"{share:P1} of the server's bytes were redirected");
        Assert.Equal(before.Degraded, after.Degraded);
    }

    /// <summary>The same mix between two services in two network namespaces joined by veth (two pods on a node), each
    /// a process of its own: the client in one namespace, the server in the other. Through NAT, the client calls a
    /// virtual address that nftables rewrites to the server's, as kube-proxy does for a Kubernetes ClusterIP.</summary>
    [KernelTheory(Tools = "ip:iproute2 nft:nftables")]
    [InlineData("h1", 4, false)]
    [InlineData("h2c", 4, false)]
    [InlineData("h1", 6, false)]
    [InlineData("h2c", 6, false)]
    [InlineData("h1", 4, true)]
    [InlineData("h2c", 4, true)]
    public async Task Bodies_from_0_B_to_64_MiB_between_two_network_namespaces_are_redirected(string client, int ipVersion, bool throughNat)
    {
        using var net = NamespacePair.Create();
        string serverAddress = ipVersion == 6 ? net.AddressB6 : net.AddressB;
        string host = ipVersion == 6 ? $"[{serverAddress}]" : serverAddress;
        using Process server = HttpPeerProcess.Start(fixture.Environment, net.B, "serve", "--listen", serverAddress);
        try
        {
            string? portLine = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(portLine?.StartsWith("PORT ", StringComparison.Ordinal) == true, $"server: {portLine} {(server.HasExited ? await server.StandardError.ReadToEndAsync() : "")}");
            string[] ports = portLine!.Split(' ');
            string[] target = [$"http://{host}:{ports[1]}", $"http://{host}:{ports[2]}"], ranges = [];
            if (throughNat)
            {
                net.AddVirtualAddressInA((80, int.Parse(ports[1])), (81, int.Parse(ports[2])));
                target = [$"http://{net.VirtualAddress}:80", $"http://{net.VirtualAddress}:81"];
                ranges = ["--SidecarlessAcceleration:SameHostPeerRanges:0", $"{net.VirtualAddress}/32"]; // as a Service range
            }

            using Process fetch = HttpPeerProcess.Start(fixture.Environment, net.A, "fetch",
                ["--h1", target[0], "--h2c", target[1], "--proto", client, .. ranges]);
            using var result = await HttpPeerProcess.CheckFetchAsync(fetch, $"{client} to {target[0]}", output);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync();
        }
    }

    private static double Share((long Redirected, long Tcp, long Paced, long Degraded) before, (long Redirected, long Tcp, long Paced, long Degraded) after)
    {
        long redirected = after.Redirected - before.Redirected, tcp = after.Tcp - before.Tcp;
        return redirected / (double)Math.Max(1, redirected + tcp);
    }

    private static async Task<(long Redirected, long Tcp, long Paced, long Degraded)> ServerBytesAsync(Backend backend)
    {
        HealthReportEntry health = await backend.HealthAsync();
        return ((long)health.Data["redirectedBytes"], (long)health.Data["tcpBytes"], (long)health.Data["pacedWrites"], (long)health.Data["degradedDirections"]);
    }

    private sealed record FeatureView(bool Accelerated, string Outcome, string Path, string? Reason, string Connection, long RedirectedBytes, long TcpBytes, long PacedWrites, DateTimeOffset? LeftFastPathAt);
}
