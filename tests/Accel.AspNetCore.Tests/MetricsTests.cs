using System.Diagnostics.Metrics;
using Accel.Testing;

namespace Accel.AspNetCore.Tests;

/// <summary>The meter "Accel" is what dotnet-counters and OpenTelemetry read.</summary>
[Collection(KernelCollection.Name)]
public sealed class MetricsTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task The_Accel_meter_reports_redirected_and_tcp_bytes_and_sockets()
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        for (int i = 0; i < 20; i++)
        {
            await frontend.Client("h1").GetByteArrayAsync("/bytes/10000");
        }

        var seen = new Dictionary<string, long>();
        var units = new Dictionary<string, string?>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            // The backend's meter: created through its IMeterFactory.
            if (instrument.Meter.Name == "Accel" && instrument.Meter.Scope == backend.Services.GetService(typeof(IMeterFactory)))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string name = instrument.Name + string.Concat(tags.ToArray().Select(t => $"[{t.Value}]"));
            seen[name] = value;
            units[instrument.Name] = instrument.Unit;
        });
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => seen[instrument.Name] = value);
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.Equal(1, seen["accel.enabled"]);
        Assert.True(seen["accel.io.bytes[redirected]"] >= 20 * 10000, $"{seen["accel.io.bytes[redirected]"]}");
        Assert.True(seen.ContainsKey("accel.io.bytes[tcp]"));
        Assert.True(seen["accel.io.messages[redirected]"] > 0);
        Assert.True(seen["accel.socket.registered"] > 0);
        Assert.Equal(0, seen["accel.socket.refused"]);
        Assert.True(seen.ContainsKey("accel.direction.degraded"));
        Assert.True(seen.ContainsKey("accel.write.paced"));
        Assert.Equal("By", units["accel.io.bytes"]);
    }
}
