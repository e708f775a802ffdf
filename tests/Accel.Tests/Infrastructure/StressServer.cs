using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Accel.Testing;

namespace Accel.Tests.Infrastructure;

/// <summary>The server half of the two-process stress tests (the client half is Accel.StressPeer).</summary>
public sealed class StressServer(AccelerationEngine engine, KernelTestEnvironment environment)
{
    public sealed record Run(IReadOnlyList<StressEndResult> Server, IReadOnlyList<StressEndResult> Client, string PeerStderr);

    public async Task<Run> RunAsync(int connections, int messages, int maxSize, bool mixed, IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        using var prepared = Listen(address, optIn: true);
        using var late = Listen(address, optIn: false);
        var results = new ConcurrentBag<StressEndResult>();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(6));

        int expected = connections;
        var serving = new List<Task>();
        var allAccepted = new TaskCompletionSource();
        int accepted = 0;
        Task AcceptLoop(Socket listener, Func<int, StressMode> modeOf) => Task.Run(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                Socket s;
                try
                {
                    s = await listener.AcceptAsync(cts.Token);
                }
                catch (Exception) when (cts.IsCancellationRequested || allAccepted.Task.IsCompleted)
                {
                    return;
                }

                int clientPort = ((IPEndPoint)s.RemoteEndPoint!).Port;
                lock (serving)
                {
                    serving.Add(Task.Run(async () =>
                    {
                        using (s)
                        {
                            results.Add(await StressEnd.RunAsync(engine, s, clientPort, isClient: false, modeOf(clientPort), messages, maxSize, cts.Token));
                        }
                    }));
                }

                if (Interlocked.Increment(ref accepted) == expected)
                {
                    allAccepted.TrySetResult();
                }
            }
        });

        Task acceptPrepared = AcceptLoop(prepared, _ => StressMode.Prepared);
        Task acceptLate = AcceptLoop(late, StressEnd.LateServerMode);

        string peer = typeof(SequencedStream).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in new[]
        {
            peer, "--pin-root", environment.PinRoot, "--cgroup", environment.CgroupPath,
            "--port", Port(prepared).ToString(), "--port-late", Port(late).ToString(),
            "--connections", connections.ToString(), "--messages", messages.ToString(), "--max-size", maxSize.ToString(),
            "--mixed", mixed ? "true" : "false", "--address", address.ToString(),
        })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(cts.Token);
        string output = await stdout;
        string errors = await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"Stress peer exited with {process.ExitCode}: {errors}");
        }

        await Task.WhenAny(allAccepted.Task, Task.Delay(TimeSpan.FromSeconds(30)));
        cts.CancelAfter(TimeSpan.FromSeconds(60));
        Task[] toWait;
        lock (serving)
        {
            toWait = serving.ToArray();
        }

        await Task.WhenAll(toWait);
        prepared.Dispose();
        late.Dispose();
        var client = JsonSerializer.Deserialize<StressEndResult[]>(output)!;
        return new Run(results.ToArray(), client, errors);
    }

    private Socket Listen(IPAddress address, bool optIn)
    {
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, 0));
        if (optIn)
        {
            Assert.True(engine.PrepareListener(listener));
        }

        listener.Listen(4096);
        return listener;
    }

    private static int Port(Socket listener) => ((IPEndPoint)listener.LocalEndPoint!).Port;
}
