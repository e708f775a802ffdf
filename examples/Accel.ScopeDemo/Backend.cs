using System.Net;
using System.Net.Sockets;
using System.IO.Pipelines;
using Accel.AspNetCore;
using Accel.GrpcDemo;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Accel.ScopeDemo;

/// <summary>The demo's backend: Kestrel with the library (gRPC on two ports, the cache on a third), and a cache
/// without it (a plain listener this process never opts in).</summary>
public static class Backend
{
    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var grpc = new List<ListenOptions>();
        ListenOptions? resp = null, pg = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, o => { o.Protocols = HttpProtocols.Http2; grpc.Add(o); });
            k.Listen(IPAddress.Loopback, 0, o => { o.Protocols = HttpProtocols.Http2; grpc.Add(o); });
            k.Listen(IPAddress.Loopback, 0, o => { o.UseConnectionHandler<RespConnectionHandler>(); resp = o; });
            k.Listen(IPAddress.Loopback, 0, o => { o.UseConnectionHandler<PgConnectionHandler>(); pg = o; });
        });
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<RespServer>();
        builder.Services.AddSingleton<PgServer>();
        builder.Services.AddSidecarlessAcceleration(); // the one line
        var app = builder.Build();
        app.MapGrpcService<TransferService>();
        await app.StartAsync();

        using var plain = new TcpListener(IPAddress.Loopback, 0);
        plain.Start();
        _ = ServePlainAsync(plain, new RespServer());
        Console.WriteLine($"LISTENING grpc={string.Join(',', grpc.Select(o => o.IPEndPoint!.Port))} resp={resp!.IPEndPoint!.Port} pg={pg!.IPEndPoint!.Port} plain={((IPEndPoint)plain.LocalEndpoint).Port}");
        await app.WaitForShutdownAsync();
        return 0;
    }

    private static async Task ServePlainAsync(TcpListener listener, RespServer server)
    {
        while (true)
        {
            TcpClient client = await listener.AcceptTcpClientAsync();
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    NetworkStream stream = client.GetStream();
                    await server.ServeAsync(PipeReader.Create(stream), PipeWriter.Create(stream), () => "a plain socket, not in the fast path", default);
                }
            });
        }
    }
}

/// <summary>Kestrel's side of the cache: what the connection's <see cref="IAccelerationFeature"/> says answers ACCEL.</summary>
public sealed class RespConnectionHandler(RespServer server) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        try
        {
            await server.ServeAsync(connection.Transport.Input, connection.Transport.Output, () => Describe(connection), connection.ConnectionClosed);
        }
        catch (Exception e) when (e is OperationCanceledException or ConnectionResetException)
        {
        }
    }

    /// <summary>What this side knows of the connection, in one line.</summary>
    public static string Describe(ConnectionContext connection)
    {
        IAccelerationFeature? f = connection.Features.Get<IAccelerationFeature>();
        return f is null
            ? "no acceleration feature"
            : $"{f.Outcome} {f.Outbound.Path} redirected={f.Outbound.RedirectedBytes} B tcp={f.Outbound.TcpBytes} B";
    }
}

/// <summary>Kestrel's side of the database stand-in.</summary>
public sealed class PgConnectionHandler(PgServer server) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        try
        {
            await server.ServeAsync(connection.Transport.Input, connection.Transport.Output, () => RespConnectionHandler.Describe(connection), connection.ConnectionClosed);
        }
        catch (Exception e) when (e is OperationCanceledException or ConnectionResetException)
        {
        }
    }
}

/// <summary>What the demo prints last, as one JSON line (the test reads it).</summary>
public sealed class DemoResult
{
    public sealed record Figures(long RedirectedBytes, long TcpBytes, long TrackedReports, long LeftPlainPeers);

    public string? Redis { get; set; }
    public string? Npgsql { get; set; }
    public int NpgsqlErrors { get; set; }
    public int RedisErrors { get; set; }
    public List<string> Grpc { get; set; } = new();
    public long GrpcCalls { get; set; }
    public string? GrpcError { get; set; }
    public string? TcpClient { get; set; }
    public int TcpClientErrors { get; set; }
    public string? Plain { get; set; }
    public int PlainErrors { get; set; }
    public Figures Before { get; set; } = new(0, 0, 0, 0);
    public Figures After { get; set; } = new(0, 0, 0, 0);
}
