using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Accel.AspNetCore.Internal;

/// <summary>The process's engine, started once, on first use or when the host starts (whichever is first),
/// always before Kestrel binds.</summary>
internal sealed class AccelerationEngineProvider(IOptions<SidecarlessAccelerationOptions> options, ILoggerFactory loggers) : IDisposable
{
    private readonly Lazy<AccelerationEngine> _engine = new(() => AccelerationEngine.Start(options.Value, loggers.CreateLogger("Accel")));

    public AccelerationEngine Engine => _engine.Value;

    public void Dispose()
    {
        if (_engine.IsValueCreated)
        {
            _engine.Value.Dispose();
        }
    }
}
