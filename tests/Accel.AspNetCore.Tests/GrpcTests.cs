using System.Diagnostics;
using Accel.GrpcDemo;
using Accel.Testing;
using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// gRPC between two processes: the gRPC example's Grpc.AspNetCore service (examples/Accel.GrpcDemo) in one, an
/// AddGrpcClient client in this one, both with the library. Every kind of call is byte-checked and redirected;
/// deadlines and cancellation behave as on TCP and leave the connection usable.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class GrpcTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelFact]
    public async Task Every_kind_of_gRPC_call_between_two_services_is_redirected_byte_for_byte()
    {
        using Process server = StartServer();
        try
        {
            string url = await UrlAsync(server);
            var services = new ServiceCollection();
            services.AddLogging();
            services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
            services.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
            services.AddGrpcClient<Transfer.TransferClient>(o => o.Address = new Uri(url));
            await using ServiceProvider provider = services.BuildServiceProvider();
            var client = provider.GetRequiredService<Transfer.TransferClient>();
            AccelerationEngine engine = provider.GetRequiredService<Internal.AccelerationEngineProvider>().Engine;
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));

            TransferRun.Result result = await TransferRun.RunAsync(client, chunks: 100, size: 64 * 1024, cts.Token);
            Assert.Null(result.Error);

            // A deadline that passes, and a call the client cancels: the status says so, as on TCP.
            var deadline = await Assert.ThrowsAsync<RpcException>(() => client.WaitAsync(new WaitRequest { Milliseconds = 10_000 }, deadline: DateTime.UtcNow.AddMilliseconds(200)).ResponseAsync);
            Assert.Equal(StatusCode.DeadlineExceeded, deadline.StatusCode);
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            var canceled = await Assert.ThrowsAsync<RpcException>(() => client.WaitAsync(new WaitRequest { Milliseconds = 10_000 }, cancellationToken: cancel.Token).ResponseAsync);
            Assert.Equal(StatusCode.Cancelled, canceled.StatusCode);
            Assert.True(Chunks.IsValid(await client.EchoAsync(Chunks.Make(7, 1000), cancellationToken: cts.Token), 7, 1000)); // the connection still serves

            // The server reads the connection's IAccelerationFeature through context.GetHttpContext().
            ConnectionReply connection = await client.ConnectionAsync(new Empty(), cancellationToken: cts.Token);
            AccelerationStatistics stats = engine.GetStatistics();
            output.WriteLine($"{result.Calls} calls, {result.Bytes} B checked; server's side: {connection}; client process: {stats}");
            Assert.Equal((true, nameof(RegistrationOutcome.Registered), nameof(DirectionPath.Redirected), 0L), (connection.Accelerated, connection.Outcome, connection.Path, connection.TcpBytes));
            Assert.True(connection.RedirectedBytes >= 100L * 64 * 1024 * 3, $"server redirected {connection.RedirectedBytes} B"); // echoes, downloads, exchange
            // Echoes, uploads, exchange; the process counts the last window of the open connection when it ends.
            Assert.True(stats.RedirectedBytes >= 100L * 64 * 1024 * 3 - AccelerationEngine.WindowBytes, $"client redirected {stats.RedirectedBytes} B");
            Assert.Equal(0, stats.TcpBytes);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync();
        }
    }

    private Process StartServer()
        => HttpPeerProcess.StartService(fixture.Environment, null, "Accel.GrpcDemo.dll", "server", "--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default", "Warning");

    private static async Task<string> UrlAsync(Process server)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        string? line;
        while ((line = await server.StandardOutput.ReadLineAsync(timeout.Token)) is not null)
        {
            if (line.StartsWith("LISTENING ", StringComparison.Ordinal))
            {
                return line["LISTENING ".Length..];
            }
        }

        throw new InvalidOperationException($"the gRPC server did not start: {await server.StandardError.ReadToEndAsync()}");
    }
}
