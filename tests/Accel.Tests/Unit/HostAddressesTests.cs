using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Accel.Internal;

namespace Accel.Tests.Unit;

/// <summary>The host's own addresses, which every engine publishes as possibly same-host peers.</summary>
public sealed class HostAddressesTests
{
    /// <summary>One getifaddrs call finds the addresses .NET's NetworkInterface reports: every IPv4 and IPv6
    /// unicast address of every interface, IPv6 link-local ones left out (they name no peer across interfaces).</summary>
    [Fact]
    public void Are_the_unicast_addresses_NetworkInterface_reports_without_IPv6_link_local_ones()
    {
        var expected = NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(nic => nic.GetIPProperties().UnicastAddresses)
            .Select(u => new IPAddress(u.Address.GetAddressBytes()))   // without an IPv6 scope id
            .Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 && !a.IsIPv6LinkLocal)
            .ToHashSet();

        var found = HostAddresses.Read();

        Assert.Equal(expected, found.ToHashSet());
        Assert.Contains(IPAddress.Loopback, found);
        Assert.DoesNotContain(found, a => a.IsIPv6LinkLocal);
    }
}
