namespace Accel.Benchmarks.Http;

/// <summary>
/// The requests one app of the benchmark server has started and completed (two atomic increments a request, in every
/// mode): when the client waits for a response, whether the app ever began the request tells a request that reached the
/// app from one that did not. Every app's counts are listed by any app's <c>/inflight</c>.
/// </summary>
internal sealed class RequestCounts
{
    private static readonly List<RequestCounts> All = new();
    private long _started;
    private long _completed;

    public RequestCounts()
    {
        lock (All)
        {
            All.Add(this);
        }
    }

    /// <summary>The mode the app serves, once <see cref="BenchServer"/> knows it.</summary>
    public string Mode { get; set; } = "?";

    public void Started() => Interlocked.Increment(ref _started);

    public void Completed() => Interlocked.Increment(ref _completed);

    /// <summary>Per app: mode=in flight/started.</summary>
    public static string Report()
    {
        lock (All)
        {
            return string.Join(' ', All.Select(c =>
            {
                long started = Interlocked.Read(ref c._started);
                return $"{c.Mode}={started - Interlocked.Read(ref c._completed)}/{started}";
            }));
        }
    }
}
