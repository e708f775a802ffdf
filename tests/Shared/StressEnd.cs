using System.Net.Sockets;

namespace Accel.Testing;

/// <summary>One end of a stress connection: register, then write its stream and verify the peer's at once.</summary>
public static class StressEnd
{
    public static async Task<StressEndResult> RunAsync(AccelerationEngine engine, Socket socket, int clientPort, bool isClient,
        StressMode mode, StressListener listener, int messages, int maxSize, CancellationToken ct)
    {
        var outgoing = new SequencedStream(SequencedStream.SeedFor(clientPort, clientToServer: isClient), messages, maxSize);
        var incoming = new SequencedStream(SequencedStream.SeedFor(clientPort, clientToServer: !isClient), messages, maxSize);
        SocketRegistration registration = engine.Register(socket);
        try
        {
            var allRead = new TaskCompletionSource();
            Task<string?> read = incoming.VerifyAsync(socket, allRead, ct);
            // Hold the FIN until the peer's stream is in: the connection stays established meanwhile.
            await outgoing.WriteAsync(socket, beforeShutdown: () => Task.WhenAny(allRead.Task, read), ct: ct);
            string? error = await read;
            ConnectionStatistics stats = registration.GetStatistics();
            return new StressEndResult(clientPort, mode, listener, registration.Outcome.ToString(), stats.Path.ToString(), stats.RedirectedBytes, stats.TcpBytes, error);
        }
        catch (Exception e)
        {
            ConnectionStatistics stats = registration.GetStatistics();
            return new StressEndResult(clientPort, mode, listener, registration.Outcome.ToString(), stats.Path.ToString(), stats.RedirectedBytes, stats.TcpBytes, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Connection <paramref name="index"/>'s client mode and listener in a mixed run (all six pairs
    /// in turn); everything prepared otherwise.</summary>
    public static (StressMode Mode, StressListener Listener) Plan(int index, bool mixed)
        => mixed ? ((StressMode)(index % 2), (StressListener)(index / 2 % 3)) : (StressMode.Prepared, StressListener.Prepared);
}
