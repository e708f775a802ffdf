namespace Accel.Internal;

/// <summary>The number of possible CPUs, which sizes a per-CPU map value read from user space.</summary>
internal static class PossibleCpus
{
    public static int Count { get; } = Read();

    private static int Read()
    {
        // "0-1" or "0,2-5": per-CPU values are laid out up to the highest possible CPU.
        string text = File.ReadAllText("/sys/devices/system/cpu/possible").Trim();
        int highest = 0;
        foreach (string part in text.Split(','))
        {
            string last = part.Split('-')[^1];
            highest = Math.Max(highest, int.Parse(last, System.Globalization.CultureInfo.InvariantCulture));
        }

        return highest + 1;
    }
}
