using System.Net.Sockets;

namespace Accel.Testing;

/// <summary>One end of a stress connection: register, then write its stream and verify the peer's at once.</summary>
public static class StressEnd
{
    /// <param name="pacing">Connections whose client port is even pace their writes and report their reads
    /// (<see cref="Paced"/>); the others write as fast as the socket takes it and never report.</param>
    /// <param name="windows">The socket was opted in with windows (<see cref="AccelerationEngine.OptInWithWindows"/>), as the
    /// library's transports opt theirs in: one verdict covers many sends.</param>
    public static async Task<StressEndResult> RunAsync(AccelerationEngine engine, Socket socket, int clientPort, bool isClient,
        StressMode mode, StressListener listener, int messages, int maxSize, CancellationToken ct, bool pacing = false, bool windows = false)
    {
        var outgoing = new SequencedStream(SequencedStream.SeedFor(clientPort, clientToServer: isClient), messages, maxSize);
        var incoming = new SequencedStream(SequencedStream.SeedFor(clientPort, clientToServer: !isClient), messages, maxSize);
        SocketRegistration registration = windows ? engine.RegisterWithWindows(socket) : engine.Register(socket);
        try
        {
            var allRead = new TaskCompletionSource();
            bool paced = pacing && Paced(clientPort);
            Task<string?> read = incoming.VerifyAsync(socket, allRead, ct, paced ? registration.ReportConsumed : null);
            // Hold the FIN until the peer's stream is in: the connection stays established meanwhile.
            await outgoing.WriteAsync(socket, beforeShutdown: () => Task.WhenAny(allRead.Task, read), ct: ct,
                beforeSend: paced ? n => registration.WaitToSendAsync(n, ct) : null);
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

    /// <summary>In a run with pacing, whether the connection of this client port paces (both ends know the port).</summary>
    public static bool Paced(int clientPort) => clientPort / 2 % 2 == 0; // connect() picks even ports only

    /// <summary>Connection <paramref name="index"/>'s client mode and listener in a mixed run (all six pairs
    /// in turn); everything prepared otherwise.</summary>
    public static (StressMode Mode, StressListener Listener) Plan(int index, bool mixed)
        => mixed ? ((StressMode)(index % 2), (StressListener)(index / 2 % 3)) : (StressMode.Prepared, StressListener.Prepared);
}
