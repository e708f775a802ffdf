// The process-scope demo: every TCP connection of a service joins the fast path, not only Kestrel's and
// IHttpClientFactory's. A backend (Kestrel with the library, as usual) serves gRPC on two ports and a small
// Redis-protocol cache and a PostgreSQL-protocol database stand-in; a client process with
// `o.Scope = AccelerationScope.Process` calls it through third-party clients that open their own sockets, which the
// library never sees: StackExchange.Redis, Npgsql, a gRPC channel with client-side round-robin load balancing, and a
// raw TcpClient. Then it calls a cache that does not use the library,
// which stays on plain TCP. Each line says what the backend saw of the connection.
//
//   dotnet run --project examples/Accel.ScopeDemo -c Release     start the backend as a second process, run the clients
//   dotnet run --project examples/Accel.ScopeDemo -- backend     the backend alone
// Library options come as configuration arguments (--SidecarlessAcceleration:PinRoot /path); both processes get them.
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Accel;
using Accel.Examples;
using Accel.GrpcDemo;
using Accel.ScopeDemo;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

if (args.FirstOrDefault() == "backend")
{
    return await Backend.RunAsync(args[1..]);
}

// The backend: a second process, started here with the same configuration arguments.
var psi = new System.Diagnostics.ProcessStartInfo("dotnet", [typeof(Backend).Assembly.Location, "backend", .. args]) { RedirectStandardOutput = true };
using var backend = System.Diagnostics.Process.Start(psi)!;
try
{
    string? line;
    while ((line = await backend.StandardOutput.ReadLineAsync()) is not null && !line.StartsWith("LISTENING ", StringComparison.Ordinal))
    {
    }

    var ports = (line ?? throw new InvalidOperationException("the backend did not start"))["LISTENING ".Length..]
        .Split(' ').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1].Split(',').Select(int.Parse).ToArray());

    var builder = Host.CreateApplicationBuilder(args);
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.Services.AddSidecarlessAcceleration(o => o.Scope = AccelerationScope.Process); // the one line
    // Client-side load balancing over the backend's two gRPC addresses (a static resolver stands in for DNS).
    builder.Services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => ports["grpc"].Select(p => new BalancerAddress("127.0.0.1", p)).ToArray()));
    using IHost host = builder.Build();
    await host.StartAsync();
    var health = host.Services.GetRequiredService<HealthCheckService>();
    var result = new DemoResult();

    // StackExchange.Redis: 2,000 SETs and GETs of 4 KiB values, every value checked (8 MiB each way: twice the
    // backlog bound, so the client's reads must be reported by the engine's tracker).
    (result.RedisErrors, result.Redis) = await SetAndGetAsync(ports["resp"][0], 2000, 4096);

    Console.WriteLine($"StackExchange.Redis: 2000 SET + 2000 GET of 4 KiB, {(result.RedisErrors == 0 ? "every value right" : $"{result.RedisErrors} wrong")}; backend's side: {result.Redis}");

    // Npgsql: 2,000 parameterized queries of 4 KiB (the database stand-in echoes the parameter), every value checked:
    // 8 MiB each way, twice the backlog bound.
    await using (var dataSource = Npgsql.NpgsqlDataSource.Create($"Host=127.0.0.1;Port={ports["pg"][0]};Username=demo;Password=demo;Database=demo;SSL Mode=Disable;Server Compatibility Mode=NoTypeLoading;No Reset On Close=true"))
    await using (var db = await dataSource.OpenConnectionAsync())
    {
        for (int i = 0; i < 2000; i++)
        {
            string value = Convert.ToBase64String(Value(i, 3072)); // 4 KiB of text
            await using var query = new Npgsql.NpgsqlCommand("SELECT @v", db);
            query.Parameters.AddWithValue("v", value);
            result.NpgsqlErrors += (string?)await query.ExecuteScalarAsync() == value ? 0 : 1;
        }

        await using var accel = new Npgsql.NpgsqlCommand("SELECT accel()", db);
        result.Npgsql = (string?)await accel.ExecuteScalarAsync();
    }

    Console.WriteLine($"Npgsql: 2000 queries of 4 KiB, {(result.NpgsqlErrors == 0 ? "every value right" : $"{result.NpgsqlErrors} wrong")}; backend's side: {result.Npgsql}");

    // gRPC with client-side load balancing: the channel opens a connection to each of the two addresses itself.
    using (var channel = GrpcChannel.ForAddress("static:///backend", new GrpcChannelOptions
    {
        Credentials = ChannelCredentials.Insecure,
        ServiceProvider = host.Services,
        ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } },
    }))
    {
        var client = new Transfer.TransferClient(channel);
        TransferRun.Result run = await TransferRun.RunAsync(client, chunks: 100, size: 16 * 1024);
        result.GrpcError = run.Error;
        result.GrpcCalls = run.Calls;
        for (int i = 0; i < 4; i++)
        {
            ConnectionReply c = await client.ConnectionAsync(new Empty());
            result.Grpc.Add($"{c.Outcome} {c.Path} redirected={c.RedirectedBytes} B tcp={c.TcpBytes} B");
        }
    }

    Console.WriteLine($"gRPC, round_robin over {ports["grpc"].Length} addresses: {result.GrpcCalls} calls, {result.GrpcError ?? "every byte right"}; backend's side: {string.Join(" | ", result.Grpc.Distinct())}");

    // A raw TcpClient speaking the protocol by hand.
    using (var tcp = new TcpClient())
    {
        await tcp.ConnectAsync(IPAddress.Loopback, ports["resp"][0]);
        NetworkStream stream = tcp.GetStream();
        byte[] reply = new byte[7];
        for (int i = 0; i < 1000; i++)
        {
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            await stream.ReadExactlyAsync(reply);
            result.TcpClientErrors += reply.AsSpan().SequenceEqual("+PONG\r\n"u8) ? 0 : 1;
        }

        await stream.WriteAsync("ACCEL\r\n"u8.ToArray());
        result.TcpClient = await ReadBulkAsync(stream);
    }

    Console.WriteLine($"TcpClient: 1000 PINGs, {(result.TcpClientErrors == 0 ? "every reply right" : $"{result.TcpClientErrors} wrong")}; backend's side: {result.TcpClient}");
    result.Before = await FiguresAsync(health);

    // A cache on this host that does not use the library: both ends must be in the fast path, so this stays on TCP. The
    // client's sockets were opted in all the same; their first sends find no peer, and the engine's read tracker takes
    // them out of the socket map (within milliseconds: wait for it up to two seconds).
    (result.PlainErrors, result.Plain) = await SetAndGetAsync(ports["plain"][0], 100, 1024);

    result.After = await FiguresAsync(health);
    for (var waited = System.Diagnostics.Stopwatch.StartNew(); result.After.LeftPlainPeers == result.Before.LeftPlainPeers && waited.Elapsed < TimeSpan.FromSeconds(2);)
    {
        await Task.Delay(10);
        result.After = await FiguresAsync(health);
    }
    Console.WriteLine($"StackExchange.Redis to a cache without the library: 100 SET + 100 GET, {(result.PlainErrors == 0 ? "every value right" : $"{result.PlainErrors} wrong")}; backend's side: {result.Plain}");
    Console.WriteLine($"this process: redirected {result.Before.RedirectedBytes} B, through TCP {result.Before.TcpBytes} B; reads reported by the tracker: {result.Before.TrackedReports}");
    Console.WriteLine($"after the cache without the library: through TCP {result.After.TcpBytes} B (its sockets' sends while they were in the socket map); sockets that left the map: {result.After.LeftPlainPeers - result.Before.LeftPlainPeers}");
    Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
    await host.StopAsync();
    return result.RedisErrors + result.NpgsqlErrors + result.TcpClientErrors + result.PlainErrors == 0 && result.GrpcError is null ? 0 : 1;
}
finally
{
    ServiceProcess.Stop(backend);
}

// StackExchange.Redis: `count` SETs and GETs of `size` bytes, every value checked; the wrong ones, and what the
// server says of the connection.
static async Task<(int Wrong, string Server)> SetAndGetAsync(int port, int count, int size)
{
    using var redis = await ConnectionMultiplexer.ConnectAsync(new ConfigurationOptions { EndPoints = { { IPAddress.Loopback, port } }, ConnectTimeout = 10_000 });
    IDatabase db = redis.GetDatabase();
    int wrong = 0;
    for (int i = 0; i < count; i++)
    {
        await db.StringSetAsync($"key:{i}", Value(i, size));
        byte[]? got = await db.StringGetAsync($"key:{i}");
        wrong += got is not null && got.AsSpan().SequenceEqual(Value(i, size)) ? 0 : 1;
    }

    return (wrong, (string)(await db.ExecuteAsync("ACCEL"))!);
}

static byte[] Value(int key, int size)
{
    byte[] value = new byte[size];
    for (int i = 0; i < size; i++)
    {
        value[i] = (byte)(key * 7 + i * 31);
    }

    return value;
}

static async Task<string> ReadBulkAsync(NetworkStream stream)
{
    var header = new StringBuilder();
    byte[] one = new byte[1];
    while (!header.ToString().EndsWith("\r\n", StringComparison.Ordinal))
    {
        await stream.ReadExactlyAsync(one);
        header.Append((char)one[0]);
    }

    byte[] body = new byte[int.Parse(header.ToString().AsSpan(1).TrimEnd("\r\n")) + 2];
    await stream.ReadExactlyAsync(body);
    return Encoding.UTF8.GetString(body, 0, body.Length - 2);
}

static async Task<DemoResult.Figures> FiguresAsync(HealthCheckService health)
{
    IReadOnlyDictionary<string, object> data = (await health.CheckHealthAsync()).Entries["sidecarless-acceleration"].Data;
    return new DemoResult.Figures((long)data["redirectedBytes"], (long)data["tcpBytes"], (long)data["trackedReports"], (long)data["leftPlainPeers"]);
}
