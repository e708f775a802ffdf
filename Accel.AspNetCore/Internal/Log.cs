using Microsoft.Extensions.Logging;

namespace Accel.AspNetCore.Internal;

internal static partial class Log
{
    [LoggerMessage(101, LogLevel.Warning, "HttpClient '{Client}' uses {Handler} as its primary handler, not SocketsHttpHandler: its connections are not accelerated. Use the default handler or a SocketsHttpHandler.")]
    public static partial void HandlerNotAccelerated(ILogger logger, string client, string handler);
}
