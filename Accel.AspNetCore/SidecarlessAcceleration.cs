using Accel.AspNetCore.Internal;

namespace Accel.AspNetCore;

/// <summary>The fast path for HTTP clients that IHttpClientFactory does not build, such as YARP's forwarder.</summary>
public static class SidecarlessAcceleration
{
    private static AcceleratedConnector? s_current;

    /// <summary>
    /// A <see cref="SocketsHttpHandler.ConnectCallback"/> that connects through the fast path of the application that
    /// called <c>AddSidecarlessAcceleration</c> (the one started last, if a process starts several hosts). Before that
    /// application has started, it connects plain TCP. For YARP:
    /// <c>builder.Services.AddReverseProxy().LoadFromConfig(...).ConfigureHttpClient((_, handler) => handler.ConnectCallback = SidecarlessAcceleration.ConnectCallback);</c>
    /// </summary>
    public static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> ConnectCallback { get; } = ConnectAsync;

    /// <summary>Called when an application with the library starts: its connector serves <see cref="ConnectCallback"/>.</summary>
    internal static void Use(AcceleratedConnector connector) => s_current = connector;

    /// <summary>Called when that application has stopped (its engine is about to be disposed): connect plain TCP
    /// again, unless another application has started since.</summary>
    internal static void Forget(AcceleratedConnector connector) => Interlocked.CompareExchange(ref s_current, null, connector);

    private static ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
        => Volatile.Read(ref s_current) is { } connector ? connector.ConnectAsync(context, cancellationToken) : AcceleratedConnector.ConnectPlainAsync(context, cancellationToken);
}
