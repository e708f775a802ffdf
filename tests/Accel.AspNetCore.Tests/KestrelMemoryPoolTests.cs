using System.Net;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// While acceleration is on, Kestrel's memory pool hands out blocks of <see cref="SidecarlessAccelerationOptions.KestrelBlockBytes"/>,
/// so that its socket transport reads a connection in larger pieces; with acceleration off, or the option at 0, Kestrel
/// keeps its own pool. Real Kestrel, the real kernel: uploads over the fast path through the larger blocks arrive byte
/// for byte. (The pool's own rules are in <see cref="LargeBlockMemoryPoolTests"/>; uploads of mixed write sizes through
/// the default blocks in <see cref="LargeBodyTests"/>.)
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class KestrelMemoryPoolTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelTheory]
    [InlineData(true, null, "LargeBlockMemoryPool 65536")]
    [InlineData(true, 16384, "LargeBlockMemoryPool 16384")]
    [InlineData(true, 0, "PinnedBlockMemoryPool 4096")]
    [InlineData(false, null, "PinnedBlockMemoryPool 4096")]
    public async Task Kestrels_pool_has_the_configured_blocks_only_while_acceleration_is_on(bool enabled, int? blockBytes, string expected)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled, configure: o =>
        {
            if (blockBytes is { } bytes)
            {
                o.KestrelBlockBytes = bytes;
            }
        });
        using var frontend = new Frontend(fixture.Environment, enabled, backend);
        foreach (string client in new[] { "h1", "h2c" })
        {
            Assert.Equal(expected, await frontend.Client(client).GetStringAsync("/pool"));
        }
    }

    [KernelTheory]
    [InlineData("h1")]
    [InlineData("h2c")]
    public async Task Uploads_through_larger_blocks_arrive_intact_and_redirected(string client)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled: true, configure: o => o.KestrelBlockBytes = 16 << 10);
        using var frontend = new Frontend(fixture.Environment, enabled: true, backend);
        HttpClient http = frontend.Client(client);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        Assert.Equal("LargeBlockMemoryPool 16384", await http.GetStringAsync("/pool", cts.Token));
        AccelerationStatistics before = frontend.Engine.GetStatistics();
        long sent = 0;
        foreach (long size in new long[] { 1, 4095, 4097, 16383, 16384, 16385, 65536 + 7, (16 << 20) + 12345 })
        {
            using var response = await http.PostAsync($"/check/{size}", new Pattern.Content(size), cts.Token);
            Assert.Equal("ok", await response.Content.ReadAsStringAsync(cts.Token));
            sent += size;
        }

        AccelerationStatistics after = frontend.Engine.GetStatistics();
        output.WriteLine($"{client}: {sent} B uploaded and checked; this process: {after.RedirectedBytes - before.RedirectedBytes} B redirected, {after.TcpBytes - before.TcpBytes} B through TCP");
        Assert.Equal(0, after.TcpBytes - before.TcpBytes);
        // Less the last window of the connection still open, which the process counts when it ends.
        Assert.True(after.RedirectedBytes - before.RedirectedBytes >= sent - AccelerationEngine.WindowBytes, $"{after.RedirectedBytes - before.RedirectedBytes} B redirected for {sent} B of uploads");
    }

    /// <summary>Kestrel's pool instruments (<c>aspnetcore.memory_pool.*</c>, owner <c>kestrel</c>) report the same way
    /// whichever pool Kestrel has: its own with acceleration off, the library's larger blocks with it on.</summary>
    [KernelTheory]
    [InlineData(true, 65536)]
    [InlineData(false, 4096)]
    public async Task Kestrels_pool_instruments_report_whichever_pool_Kestrel_has(bool enabled, int block)
    {
        await using var backend = await Backend.StartAsync(fixture.Environment, enabled);
        var meters = backend.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var totals = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Microsoft.AspNetCore.MemoryPool" && instrument.Meter.Scope == meters)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                totals.AddOrUpdate($"{instrument.Name}[{tag.Value}]", value, (_, sum) => sum + value);
            }
        });
        listener.Start();

        using var frontend = new Frontend(fixture.Environment, enabled, backend);
        HttpClient http = frontend.Client("h1");
        const long size = 4 << 20;
        using var response = await http.PostAsync($"/check/{size}", new Pattern.Content(size));
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());

        output.WriteLine(string.Join(", ", totals.OrderBy(t => t.Key).Select(t => $"{t.Key} {t.Value}")));
        long rented = totals.GetValueOrDefault("aspnetcore.memory_pool.rented[kestrel]");
        long allocated = totals.GetValueOrDefault("aspnetcore.memory_pool.allocated[kestrel]");
        Assert.True(rented >= size, $"{rented} B rented for a {size} B upload");
        Assert.True(allocated >= block, $"{allocated} B allocated");
        Assert.Equal(0, allocated % block);
        Assert.True(totals.ContainsKey("aspnetcore.memory_pool.pooled[kestrel]"), "no pooled memory reported");
    }

    /// <summary>A generic host: with the library's services added after the web host (Kestrel) is set up, Kestrel's
    /// pool is wrapped; added before, Kestrel's own registration wins, and a warning says what to do.</summary>
    [KernelTheory]
    [InlineData(false, "65536")]
    [InlineData(true, "4096")]
    public async Task Added_before_Kestrel_is_set_up_Kestrel_keeps_its_pool_and_a_warning_says_so(bool libraryFirst, string expectedBlock)
    {
        var warnings = new WarningRecorder();
        var builder = new HostBuilder().ConfigureLogging(l => l.ClearProviders().AddProvider(warnings));
        Action<IServiceCollection> library = s => s.AddSidecarlessAcceleration(o => fixture.Environment.Apply(o));
        if (libraryFirst)
        {
            builder.ConfigureServices(library);
        }

        builder.ConfigureWebHost(web => web
            .UseKestrel(k => k.Listen(IPAddress.Loopback, 0))
            .Configure(app => app.Run(ctx => ctx.Response.WriteAsync($"{ctx.Features.Get<IMemoryPoolFeature>()?.MemoryPool.MaxBufferSize}"))));
        if (!libraryFirst)
        {
            builder.ConfigureServices(library);
        }

        using IHost host = builder.Build();
        await host.StartAsync();
        try
        {
            string address = host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            using var http = new HttpClient();
            Assert.Equal(expectedBlock, await http.GetStringAsync(address));
            Assert.Equal(libraryFirst ? 1 : 0, warnings.Warnings.Count(w => w.Contains("KestrelBlockBytes does not apply", StringComparison.Ordinal)));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [KernelFact]
    public async Task A_block_size_out_of_range_fails_the_host_at_start_naming_the_option()
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            Backend.StartAsync(fixture.Environment, enabled: true, configure: o => o.KestrelBlockBytes = 1000));
        Assert.Contains("SidecarlessAcceleration:KestrelBlockBytes", e.Message);
    }
}
