using System.Diagnostics;
using Accel.Native.Bpf;
using Accel.Native.Interop;
using Accel.Native.Loading;
using Accel.Testing;

namespace Accel.Tests.Kernel;

/// <summary>
/// Each service attaches sock_ops to its own cgroup and pins the link in the shared directory. A container's
/// cgroup goes away with the container; the kernel then detaches the link, but the pin would keep the dead
/// link for ever: on a node where pods come and go, one per pod would pile up.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class CgroupLinkTests(KernelFixture fixture)
{
    [KernelFact]
    public async Task The_link_of_a_removed_cgroup_is_unpinned_by_the_next_start_and_live_ones_stay()
    {
        string pinDirectory = Path.Combine(fixture.Environment.PinRoot, "accel", EmbeddedObjects.Accel.Abi);
        using (AccelerationEngine.Start(fixture.Environment.Options()))
        {
            // The environment's own cgroup has its link now.
        }

        string[] live = LinkPins(pinDirectory);
        Assert.NotEmpty(live);

        string container = Path.Combine(fixture.Environment.CgroupPath, "container-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(container);
        string containerLink;
        try
        {
            var options = fixture.Environment.Options();
            options.CgroupPath = container;
            using (var engine = AccelerationEngine.Start(options))
            {
                Assert.True(engine.IsEnabled, engine.Status.Message);
            }

            containerLink = Assert.Single(LinkPins(pinDirectory).Except(live));
        }
        finally
        {
            Directory.Delete(container);
        }

        // The kernel detaches the link when it releases the cgroup, a moment after rmdir.
        var clock = Stopwatch.StartNew();
        while (CgroupIdOfLink(containerLink) != 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the kernel did not detach the removed cgroup's link within 10 s");
            await Task.Delay(50);
        }

        Assert.True(File.Exists(containerLink), "nothing else removes the pin");
        using (var next = AccelerationEngine.Start(fixture.Environment.Options()))
        {
            Assert.True(next.IsEnabled, next.Status.Message);
        }

        Assert.False(File.Exists(containerLink));
        Assert.Equal(live, LinkPins(pinDirectory));
        Assert.All(live, pin => Assert.NotEqual(0UL, CgroupIdOfLink(pin)));
    }

    private static string[] LinkPins(string directory) => [.. Directory.GetFiles(directory, "link_cgroup_*").Order()];

    private static ulong CgroupIdOfLink(string pin)
    {
        var bpf = new BpfSyscalls(LinuxKernel.Instance);
        int r = bpf.TryGetPinned(pin, out KernelFd? link);
        Assert.True(r >= 0, $"BPF_OBJ_GET {pin}: {Errno.Describe(-r)}");
        using (link)
        {
            return bpf.CgroupOfLink(link!) ?? throw new InvalidOperationException($"{pin} is not a cgroup link");
        }
    }
}
