using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Accel.Internal;

/// <summary>
/// Blocks the calling thread for a fraction of a millisecond or more with one <c>clock_nanosleep</c>: no wait handle, so
/// no futex pair per wake-up (what <see cref="WaitHandle.WaitOne(TimeSpan)"/> costs on Linux), for the library's own
/// threads that wake often and must cost little each time.
/// </summary>
internal static partial class FineSleep
{
    private const int ClockMonotonic = 1;

    /// <summary>Sleeps for <paramref name="ticks"/> of <see cref="Stopwatch"/>; a signal only ends the sleep early.</summary>
    public static void For(long ticks)
    {
        long ns = (long)(ticks * (1e9 / Stopwatch.Frequency));
        var request = new Timespec { Seconds = ns / 1_000_000_000, Nanoseconds = ns % 1_000_000_000 };
        clock_nanosleep(ClockMonotonic, 0, in request, 0);
    }

    /// <summary>Sleeps for <paramref name="delay"/>; a signal only ends the sleep early.</summary>
    public static void For(TimeSpan delay) => For((long)(delay.TotalSeconds * Stopwatch.Frequency));

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc")]
    private static partial int clock_nanosleep(int clock, int flags, in Timespec request, nint remaining);
}
