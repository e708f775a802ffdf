using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Accel.Testing;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>Two real services on the real kernel: Kestrel with the accelerated transport, IHttpClientFactory
/// with the accelerated handler. Every byte of every body is checked.</summary>
[Collection(KernelCollection.Name)]
public sealed class EndToEndTests(KernelFixture fixture, ITestOutputHelper output)
{
    private static readonly long[] Sizes = [0, 1, 100, 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1 << 20, 4 << 20];

    [KernelFact]
    public async Task Http1_and_h2c_bodies_of_every_size_arrive_exactly_and_are_redirected()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        Assert.True(frontend.Engine.IsEnabled, frontend.Engine.Status.Message);

        long bytes = await RunWorkloadAsync(frontend);

        HealthReportEntry health = await backend.HealthAsync();
        output.WriteLine($"{bytes} body bytes checked; backend health: {string.Join(", ", health.Data.Select(d => $"{d.Key}={d.Value}"))}");
        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.Equal(true, health.Data["enabled"]);
        Assert.Null(health.Data["reason"]);
        Assert.True((long)health.Data["registeredSockets"] > 0);
        Assert.True((long)health.Data["redirectedBytes"] > 0);
        foreach (string key in new[] { "redirectedMessages", "tcpMessages", "tcpBytes" })
        {
            Assert.IsType<long>(health.Data[key]);
        }

        Assert.True(frontend.Engine.GetStatistics().RedirectedBytes > 0);
        foreach (string client in new[] { "h1", "h2c" })
        {
            // The pooled connection that serves this request is redirected, unless a 4 MiB body written
            // faster than it was read hit the backlog bound on it earlier (then it is TCP for life).
            var feature = await frontend.Client(client).GetFromJsonAsync<FeatureView>("/feature");
            Assert.NotNull(feature);
            Assert.Equal((true, nameof(RegistrationOutcome.Registered)), (feature.Accelerated, feature.Outcome));
            Assert.True(feature.Path == nameof(DirectionPath.Redirected) || feature.Reason?.Contains("MaxRedirectedBacklogBytes") == true, $"{feature}");
        }
    }

    [KernelFact]
    public async Task Http2_over_TLS_and_WebSockets_work_and_are_redirected()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient tls = frontend.Client("h2-tls");

        foreach (long size in new long[] { 0, 1000, 300_000 })
        {
            using var response = await tls.GetAsync($"/bytes/{size}", HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Null(await Pattern.VerifyAsync(await response.Content.ReadAsStreamAsync(), size, default));
        }

        var feature = await tls.GetFromJsonAsync<FeatureView>("/feature");
        Assert.Equal((true, nameof(RegistrationOutcome.Registered)), (feature!.Accelerated, feature.Outcome));

        // A WebSocket over the accelerated HTTP/1.1 endpoint (through the factory's handler): echo, both ways.
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        var wsUri = new UriBuilder(backend.Http1) { Scheme = "ws", Path = "/ws" }.Uri;
        await ws.ConnectAsync(wsUri, new HttpMessageInvoker(frontend.Handler()), default);
        byte[] message = new byte[40_000];
        for (int round = 0; round < 20; round++)
        {
            for (int i = 0; i < message.Length; i++)
            {
                message[i] = Pattern.At(i + round);
            }

            await ws.SendAsync(message, System.Net.WebSockets.WebSocketMessageType.Binary, true, default);
            byte[] received = new byte[message.Length];
            int got = 0;
            while (got < received.Length)
            {
                got += (await ws.ReceiveAsync(received.AsMemory(got), default)).Count;
            }

            Assert.Equal(message, received);
        }

        await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, default);
        // Less the last window of the connection, which the process counts when the connection ends.
        Assert.True(frontend.Engine.GetStatistics().RedirectedBytes >= 20 * message.Length - AccelerationEngine.WindowBytes);
    }

    [KernelFact]
    public async Task Disabled_mode_serves_the_same_bytes_with_nothing_redirected()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: false);
        using var frontend = new Frontend(fixture.Environment, enabled: false, backend);

        await RunWorkloadAsync(frontend);

        HealthReportEntry health = await backend.HealthAsync();
        Assert.Equal(HealthStatus.Degraded, health.Status);
        Assert.Equal(false, health.Data["enabled"]);
        Assert.Contains("Enabled = false", (string)health.Data["reason"]);
        Assert.Equal(0L, health.Data["redirectedBytes"]);
        var feature = await frontend.Client("h1").GetFromJsonAsync<FeatureView>("/feature");
        Assert.Equal((false, nameof(RegistrationOutcome.Disabled), nameof(DirectionPath.Tcp)), (feature!.Accelerated, feature.Outcome, feature.Path));
    }

    [KernelFact(Tools = "curl:curl h2load:nghttp2-client")]
    public async Task Curl_and_h2load_work_against_an_accelerated_server_unaccelerated()
    {
        string socketPath = Path.Combine(Path.GetTempPath(), $"accel-{Guid.NewGuid():N}.sock");
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true, unixSocket: socketPath);
        try
        {
            // The server's listener was prepared; curl's socket is not in the fast path, so the kernel leaves the
            // accepted socket out of the map: plain TCP, without the fast path's cost on each send.
            var (code, body) = await RunAsync("curl", "-sS", "--http1.1", new Uri(backend.Http1, "/feature").ToString());
            Assert.Equal(0, code);
            Assert.Contains("\"outcome\":\"PeerNotAccelerated\"", body);

            (code, body) = await RunAsync("curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", new Uri(backend.Http1, "/bytes/1048576").ToString());
            Assert.Equal((0, "1048576"), (code, body));

            (code, body) = await RunAsync("h2load", "-n", "200", "-c", "4", new Uri(backend.Http2, "/bytes/10000").ToString());
            Assert.True(code == 0, body);
            Assert.Contains("200 succeeded, 0 failed, 0 errored", body);

            // A Unix socket endpoint stays on Kestrel's own transport.
            (code, body) = await RunAsync("curl", "-sS", "--unix-socket", socketPath, "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "http://localhost/bytes/5000");
            Assert.Equal((0, "200 5000"), (code, body));
        }
        finally
        {
            File.Delete(socketPath);
        }
    }

    [KernelFact]
    public async Task An_invalid_option_fails_the_host_at_start_naming_the_option()
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            Backend.StartAsync(fixture.Environment, enabled: true, configure: o => o.MaxRedirectedBacklogBytes = -1));
        Assert.Contains("SidecarlessAcceleration:MaxRedirectedBacklogBytes", e.Message);
    }

    /// <summary>Concurrent GETs and streaming POST echoes over both protocols, 0 B to 4 MiB; returns body bytes checked.</summary>
    private static async Task<long> RunWorkloadAsync(Frontend frontend)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        long checkedBytes = 0;
        var requests = Enumerable.Range(0, 240).Select(i => (Client: i % 2 == 0 ? "h1" : "h2c", Post: i % 3 == 0, Size: Sizes[i % Sizes.Length]));
        await Parallel.ForEachAsync(requests, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = cts.Token }, async (r, ct) =>
        {
            HttpClient client = frontend.Client(r.Client);
            using HttpRequestMessage request = r.Post
                ? new HttpRequestMessage(HttpMethod.Post, "/echo") { Content = new Pattern.Content(r.Size) }
                : new HttpRequestMessage(HttpMethod.Get, $"/bytes/{r.Size}");
            request.Version = client.DefaultRequestVersion;
            request.VersionPolicy = client.DefaultVersionPolicy;
            using HttpResponseMessage response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            Assert.True(response.IsSuccessStatusCode, $"{r}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
            Assert.Equal(r.Client == "h1" ? HttpVersion.Version11 : HttpVersion.Version20, response.Version);
            await using Stream body = await response.Content.ReadAsStreamAsync(ct);
            string? error = await Pattern.VerifyAsync(body, r.Size, ct);
            Assert.True(error is null, $"{r}: {error}");
            Interlocked.Add(ref checkedBytes, r.Size * (r.Post ? 2 : 1));
        });
        return checkedBytes;
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        string stdout = await p.StandardOutput.ReadToEndAsync();
        string stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, (stdout + stderr).Trim());
    }

    private sealed record FeatureView(bool Accelerated, string Outcome, string Path, string? Reason);
}
