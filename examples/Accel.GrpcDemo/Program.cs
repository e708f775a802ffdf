// The gRPC demo: a Grpc.AspNetCore service and an AddGrpcClient client, in two processes, each with the one line that
// accelerates it. Every kind of call (unary, server streaming, client streaming, bidirectional) takes the fast path.
//
//   dotnet run --project examples/Accel.GrpcDemo -c Release              start the server as a second process, run
//                                                                       each kind of call, print what was bypassed
//   dotnet run --project examples/Accel.GrpcDemo -- server --urls http://127.0.0.1:5050
using Accel.Examples;
using Accel.GrpcDemo;
using Microsoft.AspNetCore.Server.Kestrel.Core;

if (args.FirstOrDefault() == "server")
{
    var builder = WebApplication.CreateSlimBuilder(args[1..]);
    builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(e => e.Protocols = HttpProtocols.Http2)); // h2c
    builder.Services.AddGrpc();
    builder.Services.AddSidecarlessAcceleration(); // the one line
    var app = builder.Build();
    app.MapGrpcService<TransferService>();
    await app.StartAsync();
    Console.WriteLine($"LISTENING {app.Urls.First()}");
    await app.WaitForShutdownAsync();
    return 0;
}

// The client service: a second process, started here.
string self = typeof(TransferService).Assembly.Location;
var psi = new System.Diagnostics.ProcessStartInfo("dotnet", [self, "server", "--urls", "http://127.0.0.1:0"]) { RedirectStandardOutput = true };
using var server = System.Diagnostics.Process.Start(psi)!;
try
{
    string? line;
    while ((line = await server.StandardOutput.ReadLineAsync()) is not null && !line.StartsWith("LISTENING ", StringComparison.Ordinal))
    {
    }

    string url = line?["LISTENING ".Length..] ?? throw new InvalidOperationException("the server did not start");
    var builder = Host.CreateApplicationBuilder();
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.Services.AddSidecarlessAcceleration(); // the one line
    builder.Services.AddGrpcClient<Transfer.TransferClient>(o => o.Address = new Uri(url));
    using IHost host = builder.Build();
    await host.StartAsync();
    var client = host.Services.GetRequiredService<Transfer.TransferClient>();
    var result = await TransferRun.RunAsync(client, chunks: 200, size: 16 * 1024);
    ConnectionReply connection = await client.ConnectionAsync(new Empty());
    var health = (await host.Services.GetRequiredService<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckService>().CheckHealthAsync())
        .Entries["sidecarless-acceleration"].Data;
    Console.WriteLine($"{result.Calls} calls, {result.Bytes >> 20} MiB checked: {result.Error ?? "every byte right"}");
    Console.WriteLine($"server side of the connection: accelerated={connection.Accelerated} path={connection.Path} redirected={connection.RedirectedBytes} B tcp={connection.TcpBytes} B");
    Console.WriteLine($"client process: redirected {health["redirectedBytes"]} B, through TCP {health["tcpBytes"]} B ({health["reason"] ?? "enabled"})");
    await host.StopAsync();
    return result.Error is null ? 0 : 1;
}
finally
{
    ServiceProcess.Stop(server);
}
