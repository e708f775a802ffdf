using Accel.AspNetCore.Internal;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Acceleration for one <see cref="System.Net.Http.IHttpClientFactory"/> client.</summary>
public static class SidecarlessAccelerationHttpClientBuilderExtensions
{
    /// <summary>
    /// Connects this client's sockets through the fast path. <c>AddSidecarlessAcceleration</c> already does this
    /// for every client; call it for a client whose primary handler is configured after the defaults (call it
    /// after <c>ConfigurePrimaryHttpMessageHandler</c>). The primary handler must be a
    /// <see cref="SocketsHttpHandler"/> (the default); with another handler the client is left unaccelerated
    /// and a warning says so.
    /// </summary>
    /// <remarks>gRPC clients built with <c>AddGrpcClient</c> are covered. gRPC client-side load balancing
    /// (a <c>GrpcChannel</c> with a resolver and load-balancing config) opens its own sockets without the
    /// handler's ConnectCallback, so those connections are not accelerated.</remarks>
    public static IHttpClientBuilder UseSidecarlessAcceleration(this IHttpClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        SidecarlessAccelerationServiceCollectionExtensions.AddCore(builder.Services);
        string name = builder.Name;
        return builder.ConfigurePrimaryHttpMessageHandler((handler, services) =>
        {
            if (handler is SocketsHttpHandler sockets)
            {
                sockets.ConnectCallback = services.GetRequiredService<AcceleratedConnector>().ConnectAsync;
            }
            else
            {
                Log.HandlerNotAccelerated(services.GetRequiredService<ILoggerFactory>().CreateLogger("Accel"), name, handler.GetType().Name);
            }
        });
    }
}
