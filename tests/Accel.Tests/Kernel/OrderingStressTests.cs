using Accel.Testing;
using Accel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Accel.Tests.Kernel;

/// <summary>
/// The invariant that matters most: never reorder, lose or duplicate a byte. Two processes, thousands of
/// concurrent connections, both ends writing pipelined sequence-numbered messages the moment the
/// connection exists, with every way of joining the fast path mixed in (prepared, registered late before
/// the first write, registered after the first write, on either end). Every byte is checked, then EOF.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class OrderingStressTests(KernelFixture fixture, ITestOutputHelper output)
{
    /// <summary>ACCEL_STRESS_CONNECTIONS raises the size for a long run (default fits CI).</summary>
    private static int Connections => int.TryParse(Environment.GetEnvironmentVariable("ACCEL_STRESS_CONNECTIONS"), out int n) ? n : 2000;

    private static int Messages => int.TryParse(Environment.GetEnvironmentVariable("ACCEL_STRESS_MESSAGES"), out int n) ? n : 24;

    [KernelFact]
    public async Task Redirect_never_reorders_loses_or_duplicates_under_mixed_registration_timing()
    {
        using var engine = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(engine.IsEnabled, engine.Status.Message);
        var run = await new StressServer(engine, fixture.Environment).RunAsync(Connections, Messages, maxSize: 4096, mixed: true);

        var all = run.Server.Concat(run.Client).ToList();
        Report(run);
        Assert.Equal(Connections, run.Client.Count);
        Assert.Equal(Connections, run.Server.Count);
        Assert.Empty(all.Where(r => r.Error is not null).Select(r => $"{r.ClientPort} {r.Mode}: {r.Error}").Take(10));

        // The mix must really exercise both paths, or the test proves nothing.
        Assert.Contains(all, r => r.Path == "Redirected");
        Assert.Contains(all, r => r.Path == "Tcp" && r.Mode == StressMode.LateAfterFirstWrite);
        // An end that wrote before registering must never redirect afterwards.
        Assert.DoesNotContain(all, r => r.Mode == StressMode.LateAfterFirstWrite && r.RedirectedBytes > 0);
    }

    private void Report(StressServer.Run run)
    {
        foreach (var (side, results) in new[] { ("server", run.Server), ("client", run.Client) })
        {
            foreach (var g in results.GroupBy(r => (r.Mode, r.Outcome, r.Path)).OrderBy(g => g.Key.ToString()))
            {
                output.WriteLine($"{side,-6} {g.Key.Mode,-22} {g.Key.Outcome,-18} {g.Key.Path,-10} {g.Count(),6} connections, {g.Sum(r => r.RedirectedBytes),12} B redirected, {g.Sum(r => r.TcpBytes),12} B tcp, {g.Count(r => r.Error is not null)} bad");
            }
        }
    }
}
