// The second (and third) process of the stress and namespace tests.
//   connect: opens N connections at once to the given ports and, on each, writes its sequenced stream while
//            verifying the server's.
//   serve:   listens (opted in), prints "PORT <n>", serves N connections the same way.
//   status:  starts the engine and prints its status (for restricted environments).
//   echo:    listens, prints "PORT <n>", and on each of N connections sends back every byte it reads, until EOF:
//            a reader that never reports, like a third-party server's.
//   ping:    opens N connections to the first of --ports; each makes M round trips of --max-size bytes (a request
//            whose bytes depend on connection and round, read back whole and checked): a third-party client.
//   stall:   connects once to the first of --ports (opted in, as a reader that reports), prints "CONNECTED" and
//            never reads: a peer to kill while the other end's writer waits for it.
// --scope process --prepare false: the kernel opts the sockets in (process scope), the peer never calls Prepare*.
// Prints one JSON object: per-connection results and the engine's process-wide statistics.
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Accel;
using Accel.Testing;

string role = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "connect";
var a = args.Select((v, i) => (v, i)).Where(x => x.v.StartsWith("--", StringComparison.Ordinal))
    .ToDictionary(x => x.v[2..], x => args[x.i + 1]);
int connections = int.Parse(a.GetValueOrDefault("connections", "0"));
int messages = int.Parse(a.GetValueOrDefault("messages", "0"));
int maxSize = int.Parse(a.GetValueOrDefault("max-size", "1"));
var address = IPAddress.Parse(a.GetValueOrDefault("address", "127.0.0.1"));
var options = new AccelerationEngineOptions
{
    PinRoot = a["pin-root"],
    CgroupPath = a.GetValueOrDefault("cgroup"), // none: the engine finds its own, as in a container
    MountBpffsIfMissing = false,
    Enabled = a.GetValueOrDefault("accel", "true") == "true",
    ServiceName = a.GetValueOrDefault("service-name"),
    MaxRedirectedBacklogBytes = long.Parse(a.GetValueOrDefault("backlog", (4L << 20).ToString())),
    Scope = Enum.Parse<AccelerationScope>(a.GetValueOrDefault("scope", nameof(AccelerationScope.PreparedSockets)), ignoreCase: true),
};
// With process scope the kernel opts every socket in: --prepare false leaves PrepareListener/PrepareConnect out.
bool prepare = a.GetValueOrDefault("prepare", "true") == "true";
bool pacing = a.GetValueOrDefault("pacing", "false") == "true";
bool windows = a.GetValueOrDefault("windows", "false") == "true"; // opted in as the library's transports are
foreach (string range in a.GetValueOrDefault("ranges", "").Split(',', StringSplitOptions.RemoveEmptyEntries))
{
    options.SameHostPeerRanges.Add(range);
}

using var engine = AccelerationEngine.Start(options);
if (role == "status")
{
    // Where it starts in a restricted environment (no capabilities, another uid ...): what it says.
    Console.Out.Write(JsonSerializer.Serialize(engine.Status));
    return 0;
}

if (options.Enabled && !engine.IsEnabled)
{
    Console.Error.WriteLine($"engine disabled: {engine.Status.Message}");
    return 2;
}

if (role == "stall")
{
    using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
    engine.PrepareConnect(socket, reportsConsumption: true);
    await socket.ConnectAsync(new IPEndPoint(address, int.Parse(a["ports"].Split(',')[0])));
    Console.Out.WriteLine("CONNECTED");
    Console.Out.Flush();
    await Task.Delay(TimeSpan.FromMinutes(5)); // killed long before
    return 0;
}

using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
StressEndResult[] results = role switch
{
    "serve" => await ServeAsync(),
    "echo" => await EchoAsync(),
    "ping" => await PingAsync(),
    _ => await ConnectAsync(),
};
Console.Out.Write(JsonSerializer.Serialize(new StressPeerOutput(results, engine.GetStatistics())));
return 0;

async Task<StressEndResult[]> ConnectAsync()
{
    int[] ports = a["ports"].Split(',').Select(int.Parse).ToArray(); // one per StressListener
    bool mixed = a["mixed"] == "true";
    using var connectGate = new SemaphoreSlim(128);
    return await Task.WhenAll(Enumerable.Range(0, connections).Select(async i =>
    {
        var (mode, listener) = StressEnd.Plan(i, mixed);
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (mode == StressMode.Prepared && prepare)
            {
                _ = windows ? engine.OptInWithWindows(socket, reportsConsumption: pacing) : engine.PrepareConnect(socket, reportsConsumption: pacing);
            }

            await connectGate.WaitAsync(cts.Token);
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, ports[(int)listener]), cts.Token);
            }
            finally
            {
                connectGate.Release();
            }

            int clientPort = ((IPEndPoint)socket.LocalEndPoint!).Port;
            return await StressEnd.RunAsync(engine, socket, clientPort, isClient: true, mode, listener, messages, maxSize, cts.Token, pacing, windows);
        }
        catch (Exception e)
        {
            return new StressEndResult(0, mode, listener, "-", "-", 0, 0, $"connect: {e.GetType().Name}: {e.Message}");
        }
    }));
}

Task<StressEndResult[]> ServeAsync() => AcceptEachAsync(pacing, (s, clientPort) =>
    StressEnd.RunAsync(engine, s, clientPort, isClient: false, StressMode.Prepared, StressListener.Prepared, messages, maxSize, cts.Token, pacing, windows));

Task<StressEndResult[]> EchoAsync() => AcceptEachAsync(reportsConsumption: false, async (s, clientPort) =>
{
    SocketRegistration registration = engine.Register(s);
    string? error = null;
    try
    {
        byte[] buffer = new byte[64 * 1024];
        int n;
        while ((n = await s.ReceiveAsync(buffer, cts.Token)) > 0)
        {
            for (int sent = 0; sent < n;)
            {
                sent += await s.SendAsync(buffer.AsMemory(sent, n - sent), cts.Token);
            }
        }
    }
    catch (Exception e)
    {
        error = $"{e.GetType().Name}: {e.Message}";
    }

    return Result(registration, clientPort, error);
});

// Listens (opted in unless --prepare false), prints "PORT <n>", and serves each of the N connections it accepts.
async Task<StressEndResult[]> AcceptEachAsync(bool reportsConsumption, Func<Socket, int, Task<StressEndResult>> serve)
{
    using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
    listener.Bind(new IPEndPoint(address, 0));
    if (prepare)
    {
        _ = windows ? engine.OptInWithWindows(listener, reportsConsumption) : engine.PrepareListener(listener, reportsConsumption);
    }

    listener.Listen(4096);
    Console.Out.WriteLine($"PORT {((IPEndPoint)listener.LocalEndPoint!).Port}");
    Console.Out.Flush();
    var serving = new List<Task<StressEndResult>>();
    for (int i = 0; i < connections; i++)
    {
        Socket s = await listener.AcceptAsync(cts.Token);
        int clientPort = ((IPEndPoint)s.RemoteEndPoint!).Port;
        serving.Add(Task.Run(async () =>
        {
            using (s)
            {
                return await serve(s, clientPort);
            }
        }));
    }

    return await Task.WhenAll(serving);
}

async Task<StressEndResult[]> PingAsync()
{
    int port = int.Parse(a["ports"].Split(',')[0]);
    return await Task.WhenAll(Enumerable.Range(0, connections).Select(async c =>
    {
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(address, port), cts.Token);
        int clientPort = ((IPEndPoint)socket.LocalEndPoint!).Port;
        SocketRegistration registration = engine.Register(socket);
        string? error = null;
        try
        {
            byte[] request = new byte[maxSize], reply = new byte[maxSize];
            for (int round = 0; round < messages && error is null; round++)
            {
                for (int i = 0; i < request.Length; i++)
                {
                    request[i] = Pattern.At(((long)c << 40) + ((long)round << 20) + i);
                }

                await socket.SendAsync(request, cts.Token);
                for (int got = 0; got < reply.Length;)
                {
                    int n = await socket.ReceiveAsync(reply.AsMemory(got), cts.Token);
                    got += n > 0 ? n : throw new EndOfStreamException($"EOF after {got} of {reply.Length} bytes of round {round}");
                }

                int bad = reply.AsSpan().CommonPrefixLength(request);
                error = bad == request.Length ? null : $"round {round}: byte {bad} differs";
            }

            socket.Shutdown(SocketShutdown.Send);
            int tail = await socket.ReceiveAsync(reply, cts.Token);
            error ??= tail == 0 ? null : $"{tail} bytes after the last reply";
        }
        catch (Exception e)
        {
            error = $"{e.GetType().Name}: {e.Message}";
        }

        return Result(registration, clientPort, error);
    }));
}

static StressEndResult Result(SocketRegistration registration, int clientPort, string? error)
{
    ConnectionStatistics stats = registration.GetStatistics();
    return new StressEndResult(clientPort, StressMode.Prepared, StressListener.Prepared, registration.Outcome.ToString(), stats.Path.ToString(),
        stats.RedirectedBytes, stats.TcpBytes, error);
}
