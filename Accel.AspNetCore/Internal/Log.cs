using Microsoft.Extensions.Logging;

namespace Accel.AspNetCore.Internal;

internal static partial class Log
{
    [LoggerMessage(101, LogLevel.Warning, "HttpClient '{Client}' uses {Handler} as its primary handler, not SocketsHttpHandler: its connections are not accelerated. Use the default handler or configure a SocketsHttpHandler with ConfigurePrimaryHttpMessageHandler.")]
    public static partial void HandlerNotAccelerated(ILogger logger, string client, string handler);

    [LoggerMessage(102, LogLevel.Warning, "HttpClient '{Client}' has a SocketsHttpHandler.ConnectCallback of its own: it is left alone, and the client's connections are not accelerated. To accelerate them, open the socket in that callback as AccelerationEngine.PrepareConnect and Register describe.")]
    public static partial void OwnConnectCallback(ILogger logger, string client);

    [LoggerMessage(103, LogLevel.Warning, "Kestrel keeps its own memory pool (4 KiB blocks), so KestrelBlockBytes does not apply and large uploads gain less from the fast path: AddSidecarlessAcceleration was called before Kestrel was set up. Call it after the web host is configured (WebApplication.CreateBuilder sets Kestrel up first), or set KestrelBlockBytes to 0 to keep Kestrel's pool without this warning.")]
    public static partial void KestrelPoolNotWrapped(ILogger logger);

    [LoggerMessage(104, LogLevel.Warning, "Giving back the idle blocks of Kestrel's memory pool failed; they stay pooled until the next try, and nothing else changes.")]
    public static partial void PoolTrimFailed(ILogger logger, Exception exception);
}
