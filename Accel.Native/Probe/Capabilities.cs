using System.Globalization;

namespace Accel.Native.Probe;

/// <summary>The effective capabilities of this process, from /proc/self/status.</summary>
internal readonly record struct Capabilities(ulong Effective)
{
    public const int NetAdmin = 12;
    public const int SysAdmin = 21;
    public const int Perfmon = 38;
    public const int Bpf = 39;

    public bool Has(int capability) => (Effective & (1UL << capability)) != 0;

    /// <summary>CAP_BPF + CAP_NET_ADMIN, or CAP_SYS_ADMIN (which kernels before 5.8 require).</summary>
    public bool CanLoadFastPath => Has(SysAdmin) || (Has(Bpf) && Has(NetAdmin));

    /// <summary>The names of what is missing for <see cref="CanLoadFastPath"/>, e.g. "CAP_BPF, CAP_NET_ADMIN".</summary>
    public string Missing()
    {
        var missing = new List<string>();
        if (!Has(Bpf))
        {
            missing.Add("CAP_BPF");
        }

        if (!Has(NetAdmin))
        {
            missing.Add("CAP_NET_ADMIN");
        }

        return string.Join(", ", missing);
    }

    public static Capabilities OfThisProcess(string statusPath = "/proc/self/status")
    {
        foreach (string line in File.ReadLines(statusPath))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
            {
                return new Capabilities(ulong.Parse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }
        }

        return new Capabilities(0);
    }
}
