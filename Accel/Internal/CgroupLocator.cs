namespace Accel.Internal;

/// <summary>Finds this process's cgroup v2 directory: its path in /proc/self/cgroup ("0::/path") under the
/// cgroup2 mount point from /proc/self/mountinfo.</summary>
internal static class CgroupLocator
{
    public static string? OwnCgroupDirectory()
    {
        string? relative = File.ReadLines("/proc/self/cgroup")
            .Where(l => l.StartsWith("0::", StringComparison.Ordinal))
            .Select(l => l[3..])
            .FirstOrDefault();
        string? mount = Cgroup2MountPoint();
        if (relative is null || mount is null)
        {
            return null;
        }

        return relative == "/" ? mount : Path.Join(mount, relative);
    }

    public static string? Cgroup2MountPoint()
    {
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            // "36 25 0:31 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw"
            int dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash < 0)
            {
                continue;
            }

            string[] tail = line[(dash + 3)..].Split(' ');
            if (tail.Length > 0 && tail[0] == "cgroup2")
            {
                return line[..dash].Split(' ')[4];
            }
        }

        return null;
    }
}
