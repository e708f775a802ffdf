using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Accel.Benchmarks.Http;

/// <summary>
/// The requests one app of the benchmark server has started and completed (two atomic increments a request, in every
/// mode): when the client waits for a response, whether the app ever began the request tells a request that reached the
/// app from one that did not. Every app's counts are listed by any app's <c>/inflight</c>, and the state in Kestrel of
/// the last request each app started, while requests are in flight there, by <c>/inflight/state</c>.
/// </summary>
internal sealed class RequestCounts
{
    /// <summary>The path prefix of the endpoints that read these counts: their own requests are not remembered.</summary>
    public const string Path = "/inflight";

    /// <summary>The endpoint that reads the state of the requests in flight (<see cref="State"/>).</summary>
    public const string StatePath = Path + "/state";

    private static readonly List<RequestCounts> All = new();
    private long _started;
    private long _completed;
    private HttpContext? _last; // the last request started, other than these endpoints' (a store, no allocation)

    public RequestCounts()
    {
        lock (All)
        {
            All.Add(this);
        }
    }

    /// <summary>The mode the app serves, once <see cref="BenchServer"/> knows it.</summary>
    public string Mode { get; set; } = "?";

    public void Started(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments(Path, StringComparison.Ordinal))
        {
            Volatile.Write(ref _last, context);
        }

        Interlocked.Increment(ref _started);
    }

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

    /// <summary>For each app with a request in flight other than <paramref name="asking"/>: the Kestrel state of the
    /// last request it started (in a sequential case, the one that waits), read by reflection (<see cref="StateDump"/>).
    /// Kestrel reuses a request's objects for the next one on its connection, so this is that request's state only
    /// while it is in flight.</summary>
    public static string State(HttpContext asking)
    {
        var text = new StringBuilder();
        RequestCounts? askingApp = asking.RequestServices.GetService<RequestCounts>();
        lock (All)
        {
            foreach (RequestCounts c in All)
            {
                long inFlight = Interlocked.Read(ref c._started) - Interlocked.Read(ref c._completed);
                if (inFlight > (c == askingApp ? 1 : 0) && Volatile.Read(ref c._last) is { } last)
                {
                    try
                    {
                        // A finished request's context throws on Features; a running one's does not.
                        text.AppendLine(StateDump.Server(last.Features, $"app {c.Mode}, {inFlight} in flight, last request's features"));
                    }
                    catch (Exception e)
                    {
                        text.AppendLine($"app {c.Mode}, {inFlight} in flight: reading its last request failed: {e}");
                    }
                }
            }
        }

        return text.Length == 0 ? "no app has a request in flight" : text.ToString();
    }
}
