using Accel.AspNetCore.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Acceleration for one <see cref="System.Net.Http.IHttpClientFactory"/> client.</summary>
public static class SidecarlessAccelerationHttpClientBuilderExtensions
{
    /// <summary>
    /// Connects this client's sockets through the fast path. <c>AddSidecarlessAcceleration</c> already does this for
    /// every client; this is for an application that accelerates some clients only. It applies after all of the
    /// client's own configuration, whenever it is called: a primary handler configured with
    /// <c>ConfigurePrimaryHttpMessageHandler</c> is accelerated too, when it is a <see cref="SocketsHttpHandler"/>
    /// without a ConnectCallback of its own. Another handler, or a ConnectCallback of the application's, is left
    /// alone and a warning says so once.
    /// </summary>
    /// <remarks>gRPC clients built with <c>AddGrpcClient</c> are covered. gRPC client-side load balancing
    /// (a <c>GrpcChannel</c> with a resolver and load-balancing config) opens its own sockets without the
    /// handler's ConnectCallback, so those connections are not accelerated.</remarks>
    public static IHttpClientBuilder UseSidecarlessAcceleration(this IHttpClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        SidecarlessAccelerationServiceCollectionExtensions.AddCore(builder.Services);
        string name = builder.Name;
        builder.Services.Configure<AcceleratedClients>(c => c.Names.Add(name));
        return builder;
    }
}
