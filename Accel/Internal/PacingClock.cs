using System.Diagnostics;

namespace Accel.Internal;

/// <summary>
/// Delays of a fraction of a millisecond, for writers that wait for their reader (<see cref="SendPacer"/>).
/// </summary>
/// <remarks>
/// <see cref="Task.Delay(TimeSpan)"/> counts in whole milliseconds and, with both CPUs busy moving the bytes, fired
/// about 4 ms late here, where a reader empties a 4 MiB queue in about 1 ms: a writer that slept that long at the bound
/// left its reader idle for most of the wait. One background thread, started by the first delay, sleeps until the
/// earliest deadline (<c>clock_nanosleep</c>, in slices, so that an earlier delay that arrives meanwhile waits at most
/// one slice) and completes the delays that are due; the callers continue on the thread pool. While no delay is pending
/// the thread blocks and costs nothing.
/// </remarks>
internal static class PacingClock
{
    private static readonly long Slice = Stopwatch.Frequency / 4000; // 250 us
    private static readonly long Coarse = Stopwatch.Frequency / 500; // 2 ms: longer waits block on the monitor
    private static readonly object Gate = new();
    private static readonly PriorityQueue<TaskCompletionSource, long> Pending = new();
    private static Thread? _thread;

    /// <summary>Completes after <paramref name="delay"/> (a little later, never earlier), or is canceled by
    /// <paramref name="cancellationToken"/>.</summary>
    public static async Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long deadline = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
        lock (Gate)
        {
            bool first = !Pending.TryPeek(out _, out long head) || deadline < head;
            Pending.Enqueue(done, deadline);
            if (_thread is null)
            {
                _thread = new Thread(Run) { IsBackground = true, Name = "Accel pacing clock" };
                _thread.Start();
            }
            else if (first)
            {
                Monitor.Pulse(Gate);
            }
        }

        using (cancellationToken.UnsafeRegister(static (s, token) => ((TaskCompletionSource)s!).TrySetCanceled(token), done))
        {
            await done.Task.ConfigureAwait(false);
        }
    }

    private static void Run()
    {
        var due = new List<TaskCompletionSource>();
        while (true)
        {
            long sleep = 0;
            lock (Gate)
            {
                while (Pending.Count == 0)
                {
                    Monitor.Wait(Gate);
                }

                long now = Stopwatch.GetTimestamp();
                while (Pending.TryPeek(out _, out long deadline) && deadline <= now)
                {
                    due.Add(Pending.Dequeue());
                }

                if (due.Count == 0)
                {
                    Pending.TryPeek(out _, out long next);
                    long remaining = next - now;
                    if (remaining > Coarse)
                    {
                        // Wakes a millisecond or more early (or when an earlier delay arrives), then sleeps finely.
                        Monitor.Wait(Gate, TimeSpan.FromSeconds((double)(remaining - Coarse / 2) / Stopwatch.Frequency));
                        continue;
                    }

                    sleep = Math.Min(remaining, Slice);
                }
            }

            if (due.Count > 0)
            {
                foreach (TaskCompletionSource d in due)
                {
                    d.TrySetResult();
                }

                due.Clear();
            }
            else
            {
                FineSleep.For(sleep); // an interruption only ends this slice early
            }
        }
    }
}
