using Accel.Native.Interop;

namespace Accel.Native.Pinning;

/// <summary>
/// Which running instance published which entry of the host-wide table of possibly same-host peers
/// (<c>accel_local_prefixes</c>), so that an entry leaves the table once no running instance needs it: when its last
/// publisher stops, or, for one that was killed, when the next instance starts. Without this the table kept the
/// addresses of every container that ever ran on the host; where pod addresses are not reused (IPv6 ranges, IPAM
/// that walks its whole range), it filled up.
/// </summary>
/// <remarks>
/// A claim is an empty directory <c>instance_&lt;owner&gt;/claims/&lt;key in hex&gt;</c> in the instance's lease
/// directory (<see cref="InstanceLeases"/>): bpffs holds directories, not files. An instance makes its <c>claims</c>
/// directory when it takes its lease, and a claim before it inserts the entry, both under the pin directory's lock,
/// as is every removal; so an entry a running instance inserted is always claimed. A running instance without a
/// <c>claims</c> directory is a build that does not claim: while one runs, nothing is removed, as its entries cannot
/// be told apart.
/// </remarks>
internal static class PeerClaims
{
    private const string ClaimsDirectory = "claims";

    /// <summary>Marks the instance whose lease directory is <paramref name="lease"/> as one that claims its entries.</summary>
    public static bool Begin(string lease) => OwnerOnlyDirectory.TryCreate(Path.Combine(lease, ClaimsDirectory));

    /// <summary>Records that the instance claims <paramref name="key"/>; false when that cannot be recorded.</summary>
    public static bool Claim(string lease, ReadOnlySpan<byte> key) => OwnerOnlyDirectory.TryCreate(PathOf(lease, key));

    /// <summary>Takes back a claim recorded for an entry that was not inserted.</summary>
    public static void Unclaim(string lease, ReadOnlySpan<byte> key)
    {
        try
        {
            Directory.Delete(PathOf(lease, key));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A claim left behind only keeps an entry that is not there: removing it later finds nothing.
        }
    }

    /// <summary>The keys the instance whose lease directory is <paramref name="lease"/> claims.</summary>
    public static IReadOnlyList<byte[]> Of(string lease)
    {
        var keys = new List<byte[]>();
        foreach (string name in Names(Path.Combine(lease, ClaimsDirectory)) ?? [])
        {
            try
            {
                keys.Add(Convert.FromHexString(name));
            }
            catch (FormatException)
            {
                // Not a claim of ours.
            }
        }

        return keys;
    }

    /// <summary>The keys claimed by the running instances of <paramref name="directory"/> other than
    /// <paramref name="except"/>, in hex; null when one of them does not claim (its entries are unknown).</summary>
    public static HashSet<string>? OfRunningInstances(IKernel kernel, string directory, string except)
    {
        string[] leases;
        try
        {
            leases = Directory.GetDirectories(directory, InstanceLeases.Prefix + "*");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var claimed = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (string lease in leases)
        {
            if (lease == except || InstanceLeases.IsEnded(kernel, lease))
            {
                continue;
            }

            if (Names(Path.Combine(lease, ClaimsDirectory)) is not { } names)
            {
                return null;
            }

            claimed.UnionWith(names);
        }

        return claimed;
    }

    private static string PathOf(string lease, ReadOnlySpan<byte> key) => Path.Combine(lease, ClaimsDirectory, Convert.ToHexString(key));

    private static IEnumerable<string>? Names(string claims)
    {
        try
        {
            return Directory.GetDirectories(claims).Select(Path.GetFileName).OfType<string>().ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
