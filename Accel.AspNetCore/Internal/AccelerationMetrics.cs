using System.Diagnostics.Metrics;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// The meter <c>Accel</c>, through <see cref="IMeterFactory"/>: observable instruments read the kernel's
/// counters when a listener collects (dotnet-counters, OpenTelemetry), never on the data path.
/// </summary>
internal sealed class AccelerationMetrics(IMeterFactory meters, AccelerationEngineProvider engine)
{
    public const string MeterName = "Accel";
    private Meter? _meter;

    public void Register()
    {
        if (_meter is not null)
        {
            return;
        }

        _meter = meters.Create(MeterName);
        _meter.CreateObservableGauge("accel.enabled", () => engine.Engine.IsEnabled ? 1 : 0, "{state}",
            "1 when the sockmap fast path runs in this process, 0 when traffic uses plain TCP.");
        _meter.CreateObservableCounter("accel.io.bytes", () => Paths(s => (s.RedirectedBytes, s.TcpBytes)), "By",
            "Bytes sent by registered sockets, by path: redirected socket to socket, or through TCP.");
        _meter.CreateObservableCounter("accel.io.messages", () => Paths(s => (s.RedirectedMessages, s.TcpMessages)), "{message}",
            "sendmsg calls of registered sockets, by path; for the library's own connections a redirect verdict, which covers up to 64 KiB of consecutive sends, counts once.");
        _meter.CreateObservableCounter("accel.socket.registered", () => engine.Engine.GetStatistics().RegisteredSockets, "{socket}",
            "Sockets put into the fast path.");
        _meter.CreateObservableCounter("accel.socket.refused", () => engine.Engine.GetStatistics().RefusedSockets, "{socket}",
            "Sockets that could not be put into the fast path (map full, duplicate key, early data).");
        _meter.CreateObservableCounter("accel.direction.degraded", () => engine.Engine.GetStatistics().DegradedDirections, "{direction}",
            "Connection directions that moved from redirect to TCP while their peer was open (backlog bound reached).");
        _meter.CreateObservableCounter("accel.write.paced", () => engine.Engine.GetStatistics().PacedWrites, "{write}",
            "Writes that waited for their reader to catch up instead of moving the connection to TCP.");
        _meter.CreateObservableCounter("accel.tracker.reports", () => engine.Engine.GetStatistics().TrackedReports, "{report}",
            "Process scope: reads reported for sockets whose reader the library does not see.");
        _meter.CreateObservableUpDownCounter("accel.tracker.sockets", () => engine.Engine.GetStatistics().TrackedSockets, "{socket}",
            "Process scope: sockets whose reads the engine reports now.");
    }

    private IEnumerable<Measurement<long>> Paths(Func<AccelerationStatistics, (long Redirected, long Tcp)> pick)
    {
        var (redirected, tcp) = pick(engine.Engine.GetStatistics());
        return
        [
            new Measurement<long>(redirected, new KeyValuePair<string, object?>("accel.path", "redirected")),
            new Measurement<long>(tcp, new KeyValuePair<string, object?>("accel.path", "tcp")),
        ];
    }
}
