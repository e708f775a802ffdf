using Accel.Testing;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// Requests that the client cancels at random moments, mid-upload and mid-download, among requests that run to the end,
/// through the library at both ends. On HTTP/1.1 a canceled request ends its connection while either side may still be
/// sending (the server's writes then meet a closed peer, the client's queued writes are dropped); on h2c it resets one
/// stream of a shared connection, whose other streams go on. Every request that is not canceled must come back whole
/// (downloads checked byte for byte, uploads by the server's SHA-256 of what it read), a canceled one must end with
/// <see cref="OperationCanceledException"/>, none may hang, and afterwards the same client's requests must still go
/// through the fast path, whole.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class CancellationStormTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const int Clients = 8;
    private static readonly TimeSpan StormLength = TimeSpan.FromSeconds(4);

    [KernelTheory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task Requests_canceled_at_random_leave_every_other_request_whole_and_the_client_usable(string version)
    {
        await using LoopbackApp app = await LoopbackApp.StartAsync(fixture, version, TransferEndpoints.Map);
        using HttpClient client = app.Client(version);
        client.Timeout = TimeSpan.FromSeconds(30); // a request that hangs fails the test

        var storm = new Storm(client);
        using (var end = new CancellationTokenSource(StormLength))
        {
            Task[] clients = [.. Enumerable.Range(0, Clients).Select(i => Task.Run(() => storm.RunAsync(i, end.Token)))];
            await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(90));
        }

        output.WriteLine($"HTTP/{version}: {storm.Whole} requests whole, {storm.Canceled} canceled, {storm.FinishedFirst} finished before their cancellation");
        Assert.Equal(0, storm.Wrong);
        Assert.True(storm.Whole > 0 && storm.Canceled > 0, "the storm made no whole or no canceled request");

        // The client goes on: its next requests come back whole, through the fast path. First the server's handlers of the
        // last canceled requests end (their connections closed, RequestAborted stops their writes), whose sends to a
        // closed peer would go through TCP.
        await Task.Delay(500);
        AccelerationStatistics before = app.Engine.GetStatistics();
        var random = new Random(1);
        for (int i = 0; i < 20; i++)
        {
            Assert.True(await TransferEndpoints.RandomRequestAsync(client, random, CancellationToken.None), "a request after the storm came back wrong");
        }

        app.AssertThroughFastPath(before, atLeast: 1, output);
    }

    private sealed class Storm(HttpClient client)
    {
        private int _whole, _canceled, _finishedFirst, _wrong;

        public int Whole => _whole;

        public int Canceled => _canceled;

        public int FinishedFirst => _finishedFirst;

        public int Wrong => _wrong;

        public async Task RunAsync(int seed, CancellationToken end)
        {
            var random = new Random(seed);
            while (!end.IsCancellationRequested)
            {
                bool cancel = random.Next(2) == 0;
                using var cts = new CancellationTokenSource();
                if (cancel)
                {
                    cts.CancelAfter(TimeSpan.FromMilliseconds(random.Next(0, 30)));
                }

                try
                {
                    bool right = await TransferEndpoints.RandomRequestAsync(client, random, cts.Token);
                    if (!right)
                    {
                        Interlocked.Increment(ref _wrong);
                    }
                    else if (cancel)
                    {
                        Interlocked.Increment(ref _finishedFirst);
                    }
                    else
                    {
                        Interlocked.Increment(ref _whole);
                    }
                }
                catch (OperationCanceledException) when (cancel && cts.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _canceled);
                }
            }
        }
    }
}
