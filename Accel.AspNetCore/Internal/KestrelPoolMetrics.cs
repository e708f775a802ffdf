using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// The instruments Kestrel's own memory pool reports (OpenTelemetry's <c>aspnetcore.memory_pool.*</c>, meter
/// <c>Microsoft.AspNetCore.MemoryPool</c>), reported by <see cref="LargeBlockMemoryPool"/> while it stands in for that
/// pool, so that a dashboard of Kestrel's pooled and allocated memory keeps working, and shows the larger blocks. Same
/// names, units, descriptions and owner tag as Kestrel's, so that a listener sees one instrument per name.
/// </summary>
internal sealed class KestrelPoolMetrics
{
    public const string MeterName = "Microsoft.AspNetCore.MemoryPool";
    private const string OwnerTag = "aspnetcore.memory_pool.owner";

    private readonly UpDownCounter<long> _pooled;
    private readonly Counter<long> _allocated;
    private readonly Counter<long> _evicted;
    private readonly Counter<long> _rented;

    public KestrelPoolMetrics(IMeterFactory meters)
    {
        Meter meter = meters.Create(MeterName);
        _pooled = meter.CreateUpDownCounter<long>("aspnetcore.memory_pool.pooled", "By",
            "Number of bytes currently pooled and available for reuse.");
        _allocated = meter.CreateCounter<long>("aspnetcore.memory_pool.allocated", "By",
            "Total number of bytes allocated by the memory pool. Allocation occurs when a memory rental request exceeds the available pooled memory.");
        _evicted = meter.CreateCounter<long>("aspnetcore.memory_pool.evicted", "By",
            "Total number of bytes evicted from the memory pool. Eviction occurs when idle pooled memory is reclaimed. Evicted memory is available for garbage collection.");
        _rented = meter.CreateCounter<long>("aspnetcore.memory_pool.rented", "By",
            "Total number of bytes rented from the memory pool.");
    }

    public void Pooled(long bytes, string? owner)
    {
        if (_pooled.Enabled)
        {
            _pooled.Add(bytes, Tags(owner));
        }
    }

    public void Allocated(long bytes, string? owner)
    {
        if (_allocated.Enabled)
        {
            _allocated.Add(bytes, Tags(owner));
        }
    }

    public void Evicted(long bytes, string? owner)
    {
        if (_evicted.Enabled)
        {
            _evicted.Add(bytes, Tags(owner));
        }
    }

    public void Rented(long bytes, string? owner)
    {
        if (_rented.Enabled)
        {
            _rented.Add(bytes, Tags(owner));
        }
    }

    private static TagList Tags(string? owner)
    {
        var tags = new TagList();
        if (!string.IsNullOrEmpty(owner))
        {
            tags.Add(OwnerTag, owner);
        }

        return tags;
    }
}
