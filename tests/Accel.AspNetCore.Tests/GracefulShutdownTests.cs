using Accel.Testing;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// A server with the library stops gracefully (<c>StopAsync</c>) while eight clients download and upload through the
/// fast path: Kestrel stops accepting, finishes or ends what is in flight and closes its connections, and the library's
/// transport settles each connection's last window as Kestrel aborts or disposes it. Every request either completes with
/// the right bytes or fails with an <see cref="HttpRequestException"/> (or an <see cref="IOException"/> reading its body),
/// and none waits for its timeout. Measured by hand against the same load over plain TCP (Kestrel's own transport, a
/// default handler; 2026-12-05, five stops per protocol, a few times): the same kinds of failure in about the same
/// numbers. Connection refused for the requests after the stop; on HTTP/1.1 one to five "response ended prematurely" per
/// stop (a request sent on a keep-alive connection as Kestrel closed it); on h2c, in a cold process's first stop, eight
/// requests failed with the server's GOAWAY (NO_ERROR) on both paths. No wrong byte on either.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class GracefulShutdownTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const int Clients = 8;
    private const int Stops = 3;

    [KernelTheory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task A_server_stopping_under_load_ends_every_request_with_its_bytes_or_an_error(string version)
    {
        int completed = 0;
        for (int stop = 0; stop < Stops; stop++)
        {
            await using LoopbackApp app = await LoopbackApp.StartAsync(fixture, version, TransferEndpoints.Map);
            using HttpClient client = app.Client(version);
            client.Timeout = TimeSpan.FromSeconds(30); // a request that hangs fails the test (TaskCanceledException)
            var load = new Load(client);
            using var end = new CancellationTokenSource();
            Task[] clients = [.. Enumerable.Range(0, Clients).Select(i => Task.Run(() => load.RunAsync(i, end.Token)))];
            await Task.Delay(700);
            await app.App.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            await Task.Delay(300);
            end.Cancel();
            await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(60));
            output.WriteLine($"stop {stop}: {load.Completed} requests completed, {load.Failed} failed ({string.Join("; ", load.Errors.Distinct())})");
            Assert.Equal(0, load.Wrong);
            completed += load.Completed;
        }

        Assert.True(completed > 0, "no request completed before the stops");
    }

    /// <summary>Random downloads and uploads (<see cref="TransferEndpoints.RandomRequestAsync"/>) until told to end.</summary>
    private sealed class Load(HttpClient client)
    {
        private int _completed, _failed, _wrong;

        public int Completed => _completed;

        public int Failed => _failed;

        public int Wrong => _wrong;

        public List<string> Errors { get; } = new();

        public async Task RunAsync(int seed, CancellationToken end)
        {
            var random = new Random(seed);
            while (!end.IsCancellationRequested)
            {
                bool right;
                try
                {
                    right = await TransferEndpoints.RandomRequestAsync(client, random, CancellationToken.None);
                }
                catch (Exception e) when (e is HttpRequestException or IOException)
                {
                    Interlocked.Increment(ref _failed);
                    lock (Errors)
                    {
                        Errors.Add((e.InnerException ?? e).Message);
                    }

                    await Task.Delay(10);
                    continue;
                }

                if (right)
                {
                    Interlocked.Increment(ref _completed);
                }
                else
                {
                    Interlocked.Increment(ref _wrong);
                }
            }
        }
    }
}
