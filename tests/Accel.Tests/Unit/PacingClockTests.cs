using System.Diagnostics;
using Accel.Internal;

namespace Accel.Tests.Unit;

/// <summary>The sub-millisecond delays paced writers wait with: never early, an earlier one never held up by a later one, cancellable.</summary>
public sealed class PacingClockTests
{
    [Fact]
    public async Task A_delay_never_completes_before_its_time()
    {
        foreach (double us in new[] { 50.0, 120, 400, 1_500, 3_000 })
        {
            long start = Stopwatch.GetTimestamp();
            await PacingClock.DelayAsync(TimeSpan.FromMicroseconds(us), CancellationToken.None);
            TimeSpan took = Stopwatch.GetElapsedTime(start);
            Assert.True(took >= TimeSpan.FromMicroseconds(us), $"a {us} us delay completed after {took.TotalMicroseconds:0} us");
        }
    }

    [Fact]
    public async Task A_short_delay_asked_while_the_clock_waits_for_a_long_one_is_not_held_up_by_it()
    {
        Task longDelay = PacingClock.DelayAsync(TimeSpan.FromSeconds(2), CancellationToken.None);
        await PacingClock.DelayAsync(TimeSpan.FromMilliseconds(5), CancellationToken.None);
        Assert.False(longDelay.IsCompleted);
        await longDelay;
    }

    [Fact]
    public async Task Many_delays_at_once_all_complete()
    {
        Task[] delays = Enumerable.Range(0, 1_000).Select(i => PacingClock.DelayAsync(TimeSpan.FromMicroseconds(50 + i % 97 * 10), CancellationToken.None)).ToArray();
        await Task.WhenAll(delays).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(delays, d => Assert.True(d.IsCompletedSuccessfully));
    }

    [Fact]
    public async Task Cancelling_ends_a_delay_with_the_token()
    {
        using var cts = new CancellationTokenSource();
        Task delay = PacingClock.DelayAsync(TimeSpan.FromMinutes(10), cts.Token);
        Assert.False(delay.IsCompleted);
        cts.Cancel();
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => delay);
        Assert.Equal(cts.Token, e.CancellationToken);

        // A token canceled before the call: no delay at all.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => PacingClock.DelayAsync(TimeSpan.FromMilliseconds(1), cts.Token));
    }
}
