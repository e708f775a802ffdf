namespace Accel.Internal;

/// <summary>Finds this process's cgroup v2 directory: its path in /proc/self/cgroup ("0::/path") under a
/// cgroup2 mount from /proc/self/mountinfo that contains it.</summary>
/// <remarks>
/// The three layouts seen in practice: a host or a container with its own cgroup namespace (path "/", the
/// mount's root is "/"); a container in the host's cgroup namespace (path "/docker/&lt;id&gt;", the host's
/// cgroup2 bind-mounted with root "/"); and a mount of a subtree (root "/kubepods/...", path below it).
/// </remarks>
internal static class CgroupLocator
{
    public static string? OwnCgroupDirectory() =>
        Resolve(File.ReadLines("/proc/self/cgroup"), File.ReadLines("/proc/self/mountinfo"));

    /// <summary>The directory, or null when there is no "0::" line or no cgroup2 mount that contains it.</summary>
    public static string? Resolve(IEnumerable<string> procCgroup, IEnumerable<string> mountInfo)
    {
        string? path = procCgroup
            .Where(l => l.StartsWith("0::", StringComparison.Ordinal))
            .Select(l => l[3..])
            .FirstOrDefault();
        if (path is null)
        {
            return null;
        }

        foreach ((string root, string mountPoint) in Cgroup2Mounts(mountInfo))
        {
            if (root == "/")
            {
                return path == "/" ? mountPoint : Path.Join(mountPoint, path);
            }

            if (path == root)
            {
                return mountPoint;
            }

            if (path.StartsWith(root + "/", StringComparison.Ordinal))
            {
                return Path.Join(mountPoint, path[root.Length..]);
            }
        }

        return null;
    }

    private static IEnumerable<(string Root, string MountPoint)> Cgroup2Mounts(IEnumerable<string> mountInfo)
    {
        foreach (string line in mountInfo)
        {
            // "36 25 0:31 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw"
            int dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash < 0)
            {
                continue;
            }

            string[] tail = line[(dash + 3)..].Split(' ');
            string[] head = line[..dash].Split(' ');
            if (tail.Length > 0 && tail[0] == "cgroup2" && head.Length > 4)
            {
                yield return (Unescape(head[3]), Unescape(head[4]));
            }
        }
    }

    /// <summary>mountinfo writes space, tab, newline and backslash as octal escapes ("\040").</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var text = new System.Text.StringBuilder(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length
                && field[(i + 1)..(i + 4)].All(c => c is >= '0' and <= '7'))
            {
                text.Append((char)Convert.ToInt32(field[(i + 1)..(i + 4)], 8));
                i += 3;
            }
            else
            {
                text.Append(field[i]);
            }
        }

        return text.ToString();
    }
}
