using System.Diagnostics.Metrics;
using Accel.AspNetCore.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds sidecarless service-to-service acceleration to an ASP.NET Core application.</summary>
public static class SidecarlessAccelerationServiceCollectionExtensions
{
    /// <summary>
    /// Turns on the sockmap fast path for Kestrel's TCP endpoints and every <see cref="System.Net.Http.IHttpClientFactory"/>
    /// client, registers the <c>sidecarless-acceleration</c> health check (tag <c>ready</c>) and the <c>Accel</c>
    /// meter. Where acceleration is not possible (no CAP_BPF/CAP_NET_ADMIN, not Linux, no bpffs ...) or turned
    /// off, the same code path runs on plain TCP and one log line says why.
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="configure">Sets options in code; the configuration section <c>SidecarlessAcceleration</c> wins over it.</param>
    public static IServiceCollection AddSidecarlessAcceleration(this IServiceCollection services, Action<Accel.AspNetCore.SidecarlessAccelerationOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<Accel.AspNetCore.SidecarlessAccelerationOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.BindConfiguration(Accel.AspNetCore.SidecarlessAccelerationOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<Accel.AspNetCore.SidecarlessAccelerationOptions>, OptionsValidator>());
        AddCore(services);
        services.TryAddSingleton<AccelerationMetrics>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, AccelerationStartup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnectionListenerFactory, AcceleratedTransportFactory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions>, ListenSocketOptIn>());
        services.Configure<AcceleratedClients>(c => c.All = true);
        if (!services.Any(d => d.ServiceType == typeof(AccelerationHealthCheckMarker)))
        {
            services.AddSingleton<AccelerationHealthCheckMarker>();
            services.AddHealthChecks().AddCheck<AccelerationHealthCheck>(AccelerationHealthCheck.Name, tags: ["ready"]);
            DecorateKestrelMemoryPool(services);
        }

        return services;
    }

    /// <summary>
    /// Wraps the last registration of Kestrel's memory pool factory in <see cref="AcceleratedMemoryPoolFactory"/>.
    /// Kestrel registers it when the web host is set up, which <c>WebApplication.CreateBuilder</c> does before the
    /// application's services; without a registration (Kestrel set up later, or not at all) Kestrel keeps its own pool,
    /// and the transport warns when it binds.
    /// </summary>
    private static void DecorateKestrelMemoryPool(IServiceCollection services)
    {
        for (int i = services.Count - 1; i >= 0; i--)
        {
            ServiceDescriptor kestrels = services[i];
            if (kestrels.ServiceType == typeof(IMemoryPoolFactory<byte>) && !kestrels.IsKeyedService)
            {
                services[i] = ServiceDescriptor.Singleton<IMemoryPoolFactory<byte>>(provider => new AcceleratedMemoryPoolFactory(
                    Resolve(provider, kestrels),
                    provider.GetRequiredService<AccelerationEngineProvider>(),
                    provider.GetRequiredService<IOptions<Accel.AspNetCore.SidecarlessAccelerationOptions>>(),
                    provider.GetService<IMeterFactory>() is { } meters ? new KestrelPoolMetrics(meters) : null,
                    provider.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance));
                return;
            }
        }
    }

    private static IMemoryPoolFactory<byte> Resolve(IServiceProvider provider, ServiceDescriptor descriptor)
        => (IMemoryPoolFactory<byte>)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(provider)
            ?? ActivatorUtilities.GetServiceOrCreateInstance(provider, descriptor.ImplementationType!));

    internal static void AddCore(IServiceCollection services)
    {
        services.AddOptions<Accel.AspNetCore.SidecarlessAccelerationOptions>();
        services.TryAddSingleton<AccelerationEngineProvider>();
        services.TryAddSingleton<AcceleratedConnector>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.Extensions.Http.IHttpMessageHandlerBuilderFilter, AccelerationHandlerFilter>());
        services.AddHttpClient(); // the factory and its filters, also for an application that has no client yet
    }

    /// <summary>Keeps a second call from adding the health check twice.</summary>
    private sealed class AccelerationHealthCheckMarker;
}
