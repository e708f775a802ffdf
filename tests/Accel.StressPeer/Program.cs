// The client half of the two-process stress tests: opens N connections at once to the server (the test
// process), and on each writes its sequenced stream while verifying the server's. Prints one JSON array of
// per-connection results on stdout.
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Accel;
using Accel.Testing;

var a = args.Select((v, i) => (v, i)).Where(x => x.v.StartsWith("--", StringComparison.Ordinal))
    .ToDictionary(x => x.v[2..], x => args[x.i + 1]);
int[] ports = a["ports"].Split(',').Select(int.Parse).ToArray(); // one per StressListener
int connections = int.Parse(a["connections"]);
int messages = int.Parse(a["messages"]);
int maxSize = int.Parse(a["max-size"]);
bool mixed = a["mixed"] == "true";
var address = IPAddress.Parse(a["address"]);

using var engine = AccelerationEngine.Start(new AccelerationEngineOptions
{
    PinRoot = a["pin-root"],
    CgroupPath = a["cgroup"],
    MountBpffsIfMissing = false,
});
if (!engine.IsEnabled)
{
    Console.Error.WriteLine($"engine disabled: {engine.Status.Message}");
    return 2;
}

using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
using var connectGate = new SemaphoreSlim(128);
var tasks = Enumerable.Range(0, connections).Select(async i =>
{
    var (mode, listener) = StressEnd.Plan(i, mixed);
    using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
    try
    {
        if (mode == StressMode.Prepared)
        {
            engine.PrepareConnect(socket);
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
        return await StressEnd.RunAsync(engine, socket, clientPort, isClient: true, mode, listener, messages, maxSize, cts.Token);
    }
    catch (Exception e)
    {
        return new StressEndResult(0, mode, listener, "-", "-", 0, 0, $"connect: {e.GetType().Name}: {e.Message}");
    }
}).ToArray();

StressEndResult[] results = await Task.WhenAll(tasks);
Console.Out.Write(JsonSerializer.Serialize(results));
return 0;
