using System.Diagnostics;
using Accel.Testing;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// SIGKILL at the HTTP level, on accelerated connections, in both directions: the survivor gets an error
/// within a bounded time, never a hang and never a wrong byte, and its other connections carry on.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class HttpFaultTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelTheory]
    [InlineData("h1")]
    [InlineData("h2c")]
    public async Task A_server_killed_mid_response_fails_the_client_read_cleanly(string protocol)
    {
        using Process server = StartPeer("serve");
        string[] ports = (await server.StandardOutput.ReadLineAsync())!.Split(' ');
        string port = protocol == "h1" ? ports[1] : ports[2];
        await using var bystander = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var client = new Frontend(fixture.Environment, enabled: true, bystander);
        HttpClient http = client.Client(protocol);

        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/pattern/{1L << 40}") { Version = http.DefaultRequestVersion, VersionPolicy = http.DefaultVersionPolicy };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using Stream body = await response.Content.ReadAsStreamAsync();
        Task<string?> reading = Pattern.VerifyAsync(body, 1L << 40, default);
        await Task.Delay(1000);
        Assert.False(reading.IsCompleted);
        server.Kill();
        var clock = Stopwatch.StartNew();

        Exception? failure = await Record.ExceptionAsync(async () =>
        {
            Assert.True(await Task.WhenAny(reading, Task.Delay(TimeSpan.FromSeconds(30))) == reading, "the client hung after the server was killed");
            string? error = await reading;
            Assert.DoesNotContain("expected 0x", error ?? ""); // a truncated stream, never a wrong byte
            Assert.NotNull(error);
        });
        output.WriteLine($"client read ended {clock.ElapsedMilliseconds} ms after the kill: {failure?.GetType().Name} {failure?.Message}");
        Assert.True(failure is null or IOException or HttpRequestException, $"{failure}");
        Assert.True(client.Engine.GetStatistics().RegisteredSockets >= 1);

        // The same client's other connections are unaffected.
        byte[] other = await client.Client("h1").GetByteArrayAsync("/bytes/1000000");
        Assert.Null(await Pattern.VerifyAsync(new MemoryStream(other), 1_000_000, default));
    }

    [KernelTheory]
    [InlineData("h1")]
    [InlineData("h2c")]
    public async Task A_client_killed_mid_request_and_mid_response_ends_the_server_request_without_a_hang(string protocol)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        Uri server = protocol == "h1" ? backend.Http1 : backend.Http2;
        using Process client = StartPeer("echo-client", "--url", new Uri(server, "/echo").ToString(), "--h2c", protocol == "h2c" ? "true" : "false");
        string? line = await client.StandardOutput.ReadLineAsync();
        if (line != "STREAMING")
        {
            client.WaitForExit(5000);
            Assert.Fail($"the client did not stream: '{line}', exit {(client.HasExited ? client.ExitCode : -1)}: {await client.StandardError.ReadToEndAsync()}");
        }
        for (int i = 0; i < 500 && backend.ActiveEchoes == 0; i++)
        {
            await Task.Delay(20);
        }

        Assert.Equal(1, backend.ActiveEchoes); // the server is inside the request, reading and echoing
        client.Kill();
        var clock = Stopwatch.StartNew();
        while (backend.ActiveEchoes > 0 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20);
        }

        output.WriteLine($"server request ended {clock.ElapsedMilliseconds} ms after the client was killed");
        Assert.Equal(0, backend.ActiveEchoes);

        // The server keeps serving, accelerated.
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        using var echo = await frontend.Client("h1").PostAsync("/echo", new Pattern.Content(2_000_000));
        Assert.Null(await Pattern.VerifyAsync(await echo.Content.ReadAsStreamAsync(), 2_000_000, default));
        // Less the last window of the connection still open, which the process counts when it ends.
        Assert.True((long)(await backend.HealthAsync()).Data["redirectedBytes"] > 2_000_000 - AccelerationEngine.WindowBytes);
    }

    private Process StartPeer(string role, params string[] args) => HttpPeerProcess.Start(fixture.Environment, null, role, args);
}
