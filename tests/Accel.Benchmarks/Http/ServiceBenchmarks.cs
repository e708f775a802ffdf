using Accel.Benchmarks.Paired;
using Accel.GrpcDemo;
using Google.Protobuf;
using Grpc.Net.Client;

namespace Accel.Benchmarks.Http;

/// <summary>
/// Two shapes of same-host traffic that users run besides plain requests, in the same long-lived processes and slices
/// as the HTTP cases: a YARP gateway in front of a service (two hops per request, client to gateway and gateway to
/// service, both in the fast path when accelerated) and gRPC unary calls (the gRPC example's Transfer.Echo over the
/// mode's h2c client: for the factory modes an IHttpClientFactory client, as <c>AddGrpcClient</c> gives, for "handler" a
/// SocketsHttpHandler with the library's connect callback, as a channel with a handler of its own uses it). Modes: no
/// library, A/A, the factory without the library, accelerated, accelerated handler, and, in the gRPC cases, the
/// one-lookup redirect (the measured ceiling: a default SocketsHttpHandler to an app without the library whose
/// connections <see cref="MinimalRedirect"/> redirects; see <see cref="ModeClients"/>).
/// </summary>
internal static class ServiceBenchmarks
{
    public static readonly string[] Modes = ["none", "none-aa", "factory", "accel", "handler", "floor"];

    /// <summary>The report's columns: each against no library, the library's own effect against the factory, and the
    /// library's clients against the measured ceiling.</summary>
    public static readonly (string Baseline, (string Mode, string Title)[] Columns)[] Tables =
    [
        ("none", [("none-aa", "A/A"), ("factory", "factory / none"), ("accel", "accelerated / none"), ("handler", "accelerated handler / none"), ("floor", "one-lookup redirect (the ceiling) / none")]),
        ("factory", [("accel", "accelerated / factory")]),
        ("floor", [("accel", "accelerated / ceiling"), ("handler", "accelerated handler / ceiling")]),
    ];

    public static async Task<IReadOnlyList<Metric>> RunAsync(ModeClients clients, Settings settings)
    {
        // A channel over each mode's current h2c client, made anew when the clients are renewed (each round).
        var channels = new Dictionary<string, GrpcChannel>();
        void OpenChannels()
        {
            foreach (string mode in Modes)
            {
                HttpClient http = clients[mode, "h2c"];
                GrpcChannel? old = channels.GetValueOrDefault(mode);
                channels[mode] = GrpcChannel.ForAddress(http.BaseAddress!, new GrpcChannelOptions { HttpClient = http, DisposeHttpClient = false });
                old?.Dispose();
            }
        }

        OpenChannels();
        try
        {
            PairedCase[] cases =
            [
                // Not through the one-lookup redirect: its gateway's hop would have to wait until both ends are in that
                // program's map, as its clients do (a miss drops the message), and only the client process can look.
                PairedHttpBenchmarks.Sequential(clients, "h1", 1024, settings.SequentialRequests(1024), gateway: true).Without("floor"),
                PairedHttpBenchmarks.Concurrent(clients, "h1", 1024, 64, settings.SliceDuration, gateway: true).Without("floor"),
                GrpcSequential(channels, 1024, settings.SequentialRequests(1024)),
                GrpcConcurrent(channels, clients, 1024, 64, settings.SliceDuration),
                .. GrpcStreaming.Cases(clients, settings.LargeSlice),
            ];
            await PairedRunner.RunAsync("services", Modes, settings.Rounds, cases, async modes =>
            {
                await clients.RenewAsync(modes);
                OpenChannels();
            });
            return cases.SelectMany(c => c.Metrics).ToList();
        }
        finally
        {
            foreach (GrpcChannel channel in channels.Values)
            {
                channel.Dispose();
            }
        }
    }

    private static PairedCase GrpcSequential(Dictionary<string, GrpcChannel> channels, int size, int calls)
    {
        var request = new Chunk { Data = ByteString.CopyFrom(new byte[size]) };
        return PairedHttpBenchmarks.LatencyCase($"grpc-{size}", $"gRPC unary {Report.Size(size)} sequential", calls, mode => Echo(channels[mode], request));
    }

    /// <summary><paramref name="concurrency"/> calls in flight on the mode's channel (one h2c connection) for a slice:
    /// calls/s, and the CPU time and allocated bytes of both processes per call.</summary>
    private static PairedCase GrpcConcurrent(Dictionary<string, GrpcChannel> channels, ModeClients clients, int size, int concurrency, TimeSpan duration)
    {
        string title = $"gRPC unary {Report.Size(size)}, {concurrency} concurrent";
        var rate = new Metric("grpc-rps", $"{title}, calls/s", "calls/s", HigherIsBetter: true);
        var cpu = new Metric("grpc-cpu", $"{title}, CPU per call (both processes)", "us", HigherIsBetter: false);
        var alloc = new Metric("grpc-alloc", $"{title}, bytes allocated per call (both processes)", "B", HigherIsBetter: false);
        var request = new Chunk { Data = ByteString.CopyFrom(new byte[size]) };
        return new PairedCase(rate.Title, [rate, cpu, alloc], PairedHttpBenchmarks.ThroughputSlice("grpc", concurrency, duration, clients, mode => Echo(channels[mode], request)));
    }

    /// <summary>One Echo call of <paramref name="request"/> on <paramref name="channel"/>, its reply checked.</summary>
    private static Func<Task> Echo(GrpcChannel channel, Chunk request)
    {
        var client = new Transfer.TransferClient(channel);
        return () => EchoAsync(client, request);
    }

    private static async Task EchoAsync(Transfer.TransferClient client, Chunk request)
    {
        Chunk reply = await client.EchoAsync(request);
        if (reply.Data.Length != request.Data.Length)
        {
            throw new InvalidOperationException($"gRPC Echo: {reply.Data.Length} bytes back, sent {request.Data.Length}");
        }
    }
}
