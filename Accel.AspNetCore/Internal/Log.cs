using Microsoft.Extensions.Logging;

namespace Accel.AspNetCore.Internal;

internal static partial class Log
{
    [LoggerMessage(101, LogLevel.Warning, "HttpClient '{Client}' uses {Handler} as its primary handler, not SocketsHttpHandler: its connections are not accelerated. Use the default handler or configure a SocketsHttpHandler with ConfigurePrimaryHttpMessageHandler.")]
    public static partial void HandlerNotAccelerated(ILogger logger, string client, string handler);

    [LoggerMessage(102, LogLevel.Warning, "HttpClient '{Client}' has a SocketsHttpHandler.ConnectCallback of its own: it is left alone, and the client's connections are not accelerated. To accelerate them, open the socket in that callback as AccelerationEngine.PrepareConnect and Register describe.")]
    public static partial void OwnConnectCallback(ILogger logger, string client);
}
