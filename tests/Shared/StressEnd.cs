using System.Net.Sockets;

namespace Accel.Testing;

/// <summary>One end of a stress connection: register as its mode says, then write and verify at once.</summary>
public static class StressEnd
{
    public static async Task<StressEndResult> RunAsync(AccelerationEngine engine, Socket socket, int clientPort, bool isClient,
        StressMode mode, int messages, int maxSize, CancellationToken ct)
    {
        var outgoing = new SequencedStream(SequencedStream.SeedFor(clientPort, clientToServer: isClient), messages, maxSize);
        var incoming = new SequencedStream(SequencedStream.SeedFor(clientPort, clientToServer: !isClient), messages, maxSize);
        SocketRegistration? registration = null;
        if (mode != StressMode.LateAfterFirstWrite)
        {
            registration = engine.Register(socket);
        }

        try
        {
            var allRead = new TaskCompletionSource();
            Task<string?> read = incoming.VerifyAsync(socket, allRead, ct);
            Task write = outgoing.WriteAsync(socket, k =>
            {
                if (k == 0 && mode == StressMode.LateAfterFirstWrite)
                {
                    registration = engine.Register(socket);
                }

                return Task.CompletedTask;
            }, beforeShutdown: () => Task.WhenAny(allRead.Task, read), ct);
            await write;
            string? error = await read;
            ConnectionStatistics stats = registration!.GetStatistics();
            return new StressEndResult(clientPort, mode, registration.Outcome.ToString(), stats.Path.ToString(), stats.RedirectedBytes, stats.TcpBytes, error);
        }
        catch (Exception e)
        {
            return new StressEndResult(clientPort, mode, registration?.Outcome.ToString() ?? "-", "-", 0, 0, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Whether connection <paramref name="index"/> goes to the server listener that was not opted in.</summary>
    public static bool UsesLateListener(int index, bool mixed) => mixed && (index / 3) % 2 == 1;

    /// <remarks>Linux gives connect() even ephemeral ports, hence port / 2.</remarks>
    /// <summary>The mode of a server socket accepted from the listener that was not opted in.</summary>
    public static StressMode LateServerMode(int clientPort) => (clientPort / 2) % 2 == 0 ? StressMode.LateBeforeFirstWrite : StressMode.LateAfterFirstWrite;

    /// <summary>The client's mode for connection <paramref name="index"/> in a mixed run.</summary>
    public static StressMode ClientMode(int index, bool mixed) => mixed ? (StressMode)(index % 3) : StressMode.Prepared;
}
