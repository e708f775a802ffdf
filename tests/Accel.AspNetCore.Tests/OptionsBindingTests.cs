using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Accel.AspNetCore.Tests;

/// <summary>The configuration section <c>SidecarlessAcceleration</c> reaches every option, over what the code delegate set.
/// The library binds it with the configuration binder's generated code (no reflection, so it also works trimmed or
/// AOT-compiled): these pin what it must do, a list property with no setter and enums included.</summary>
public sealed class OptionsBindingTests
{
    [Fact]
    public void Every_option_is_bound_from_the_section_and_the_section_wins_over_the_code_delegate()
    {
        SidecarlessAccelerationOptions options = Bind(new()
        {
            ["SidecarlessAcceleration:Enabled"] = "false",
            ["SidecarlessAcceleration:PinRoot"] = "/run/accel-pins",
            ["SidecarlessAcceleration:MountBpffsIfMissing"] = "false",
            ["SidecarlessAcceleration:CgroupPath"] = "/sys/fs/cgroup/service",
            ["SidecarlessAcceleration:SameHostPeerRanges:0"] = "10.244.3.0/24",
            ["SidecarlessAcceleration:SameHostPeerRanges:1"] = "10.96.0.0/12",
            ["SidecarlessAcceleration:MaxRedirectedBacklogBytes"] = "1048576",
            ["SidecarlessAcceleration:ServiceName"] = "orders",
            ["SidecarlessAcceleration:IncludeHostAddresses"] = "false",
            ["SidecarlessAcceleration:Scope"] = "Process",
            ["SidecarlessAcceleration:DisabledHealthStatus"] = "Unhealthy",
            ["SidecarlessAcceleration:KestrelBlockBytes"] = "16384",
        }, o =>
        {
            o.PinRoot = "/from/code";
            o.MaxRedirectedBacklogBytes = 2 << 20;
            o.SameHostPeerRanges.Add("fd00::/64");
        });

        Assert.False(options.Enabled);
        Assert.Equal("/run/accel-pins", options.PinRoot);
        Assert.False(options.MountBpffsIfMissing);
        Assert.Equal("/sys/fs/cgroup/service", options.CgroupPath);
        Assert.Equal(["fd00::/64", "10.244.3.0/24", "10.96.0.0/12"], options.SameHostPeerRanges); // the code's, then the section's
        Assert.Equal(1L << 20, options.MaxRedirectedBacklogBytes);
        Assert.Equal("orders", options.ServiceName);
        Assert.False(options.IncludeHostAddresses);
        Assert.Equal(AccelerationScope.Process, options.Scope);
        Assert.Equal(HealthStatus.Unhealthy, options.DisabledHealthStatus);
        Assert.Equal(16384, options.KestrelBlockBytes);
    }

    [Fact]
    public void Without_a_section_the_defaults_and_the_code_delegate_hold()
    {
        SidecarlessAccelerationOptions options = Bind([], o => o.ServiceName = "from-code");

        var defaults = new SidecarlessAccelerationOptions();
        Assert.Equal(defaults.Enabled, options.Enabled);
        Assert.Equal(defaults.PinRoot, options.PinRoot);
        Assert.Equal(defaults.MaxRedirectedBacklogBytes, options.MaxRedirectedBacklogBytes);
        Assert.Equal(defaults.Scope, options.Scope);
        Assert.Equal(defaults.DisabledHealthStatus, options.DisabledHealthStatus);
        Assert.Equal(defaults.KestrelBlockBytes, options.KestrelBlockBytes);
        Assert.Empty(options.SameHostPeerRanges);
        Assert.Equal("from-code", options.ServiceName);
    }

    [Theory]
    [InlineData("Enabled", "perhaps")]
    [InlineData("MaxRedirectedBacklogBytes", "4 MiB")]
    [InlineData("Scope", "Everything")]
    [InlineData("KestrelBlockBytes", "64 KiB")]
    public void A_value_of_the_wrong_type_fails_naming_the_setting(string option, string value)
    {
        var e = Assert.ThrowsAny<InvalidOperationException>(() => Bind(new() { [$"SidecarlessAcceleration:{option}"] = value }));
        Assert.Contains($"SidecarlessAcceleration:{option}", e.Message);
    }

    private static SidecarlessAccelerationOptions Bind(Dictionary<string, string?> settings, Action<SidecarlessAccelerationOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddSidecarlessAcceleration(configure);
        using ServiceProvider provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<SidecarlessAccelerationOptions>>().Value;
    }
}
