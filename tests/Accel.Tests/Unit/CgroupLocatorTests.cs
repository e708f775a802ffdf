using Accel.Internal;

namespace Accel.Tests.Unit;

/// <summary>The cgroup a service's sockets are attached under, for the layouts hosts and containers have.</summary>
public sealed class CgroupLocatorTests
{
    private const string HybridHost = "36 25 0:31 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate";
    private const string V1Memory = "40 25 0:35 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup cgroup rw,memory";

    [Theory]
    // A host or a container with its own cgroup namespace: its cgroup is the mount's root.
    [InlineData("0::/", "30 1 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw", "/sys/fs/cgroup")]
    // A process in a child cgroup on a hybrid host.
    [InlineData("0::/accel-test/run1", HybridHost, "/sys/fs/cgroup/unified/accel-test/run1")]
    // A container in the host's cgroup namespace with the host's cgroup2 bind-mounted (examples/deploy).
    [InlineData("0::/docker/f1a4d1c46ba6", "812 790 0:31 / /sys/fs/cgroup/unified ro,relatime - cgroup2 cgroup2 rw", "/sys/fs/cgroup/unified/docker/f1a4d1c46ba6")]
    // A mount of a subtree: the path below the mount's root.
    [InlineData("0::/kubepods/pod1/c1", "900 800 0:31 /kubepods /sys/fs/cgroup ro - cgroup2 cgroup2 rw", "/sys/fs/cgroup/pod1/c1")]
    [InlineData("0::/kubepods", "900 800 0:31 /kubepods /sys/fs/cgroup ro - cgroup2 cgroup2 rw", "/sys/fs/cgroup")]
    // Mount points with a space are escaped in mountinfo.
    [InlineData("0::/a", @"900 800 0:31 / /mnt/cgroup\040two rw - cgroup2 cgroup2 rw", "/mnt/cgroup two/a")]
    public void Finds_the_cgroup_directory_under_the_mount_that_contains_it(string procCgroup, string mount, string expected)
    {
        Assert.Equal(expected, CgroupLocator.Resolve([procCgroup], [V1Memory, mount]));
    }

    [Theory]
    // A container on a hybrid host without the host's cgroup2 mounted: only cgroup v1 is visible.
    [InlineData("0::/", V1Memory)]
    // No "0::" line (cgroup v1 only).
    [InlineData("4:memory:/docker/f1a4", HybridHost)]
    // A subtree mount that does not contain this process's cgroup.
    [InlineData("0::/system.slice/x", "900 800 0:31 /kubepods /sys/fs/cgroup ro - cgroup2 cgroup2 rw")]
    [InlineData("0::/kubepods-other", "900 800 0:31 /kubepods /sys/fs/cgroup ro - cgroup2 cgroup2 rw")]
    public void Says_none_when_no_cgroup2_mount_contains_it(string procCgroup, string mount)
    {
        Assert.Null(CgroupLocator.Resolve([procCgroup], [mount]));
    }
}
