using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Accel.Testing;

namespace Accel.Tests.Infrastructure;

/// <summary>The server half of the two-process stress tests (the client half is Accel.StressPeer, started
/// here as a separate process in the same cgroup, sharing the pinned objects).</summary>
public sealed class StressServer(AccelerationEngine engine, KernelTestEnvironment environment)
{
    private const int IpProtoTcp = 6, TcpDeferAccept = 9;
    private bool _pacing;
    private bool _windows;

    public sealed record Run(IReadOnlyList<StressEndResult> Server, IReadOnlyList<StressEndResult> Client);

    /// <param name="pacing">Half the connections pace their writes and report their reads (<see cref="StressEnd.Paced"/>);
    /// the peer process gets <paramref name="backlogBytes"/> as its bound (give this process's engine the same).</param>
    /// <param name="windows">Every prepared socket, in both processes, is opted in with windows, as the library's transports
    /// opt theirs in (<see cref="AccelerationEngine.OptInWithWindows"/>).</param>
    public async Task<Run> RunAsync(int connections, int messages, int maxSize, bool mixed, IPAddress? address = null, bool pacing = false, long backlogBytes = 4L << 20, bool windows = false)
    {
        _pacing = pacing;
        _windows = windows;
        address ??= IPAddress.Loopback;
        Socket[] listeners = Enum.GetValues<StressListener>().Select(kind => Listen(address, kind)).ToArray();
        var results = new ConcurrentBag<StressEndResult>();
        var serving = new ConcurrentBag<Task>();
        int accepted = 0;
        var allAccepted = new TaskCompletionSource();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        try
        {
            foreach (StressListener kind in Enum.GetValues<StressListener>())
            {
                Socket listener = listeners[(int)kind];
                _ = Task.Run(async () =>
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
                        serving.Add(Task.Run(async () =>
                        {
                            using (s)
                            {
                                results.Add(await StressEnd.RunAsync(engine, s, clientPort, isClient: false, StressMode.Prepared, kind, messages, maxSize, cts.Token, pacing, windows));
                            }
                        }));
                        if (Interlocked.Increment(ref accepted) == connections)
                        {
                            allAccepted.TrySetResult();
                        }
                    }
                });
            }

            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string arg in new[]
            {
                typeof(SequencedStream).Assembly.Location,
                "--pin-root", environment.PinRoot, "--cgroup", environment.CgroupPath,
                "--ports", string.Join(',', listeners.Select(l => ((IPEndPoint)l.LocalEndPoint!).Port)),
                "--connections", connections.ToString(), "--messages", messages.ToString(), "--max-size", maxSize.ToString(),
                "--mixed", mixed ? "true" : "false", "--address", address.ToString(),
                "--pacing", pacing ? "true" : "false", "--backlog", backlogBytes.ToString(), "--windows", windows ? "true" : "false",
            })
            {
                psi.ArgumentList.Add(arg);
            }

            using var process = Process.Start(psi)!;
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync(cts.Token);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"Stress peer exited with {process.ExitCode}: {await stderr}");
            }

            await Task.WhenAny(allAccepted.Task, Task.Delay(TimeSpan.FromSeconds(30)));
            await Task.WhenAll(serving.ToArray());
            return new Run(results.ToArray(), JsonSerializer.Deserialize<StressPeerOutput>(await stdout)!.Results);
        }
        finally
        {
            cts.Cancel();
            foreach (Socket l in listeners)
            {
                l.Dispose();
            }
        }
    }

    private Socket Listen(IPAddress address, StressListener kind)
    {
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, 0));
        if (kind != StressListener.NotPrepared)
        {
            Assert.True(_windows ? engine.OptInWithWindows(listener, reportsConsumption: _pacing) : engine.PrepareListener(listener, reportsConsumption: _pacing));
        }

        if (kind == StressListener.PreparedDeferAccept)
        {
            listener.SetRawSocketOption(IpProtoTcp, TcpDeferAccept, BitConverter.GetBytes(30));
        }

        listener.Listen(4096);
        return listener;
    }
}
