using System.Text;

namespace Accel.Native.Bpf;

/// <summary>Cuts a kernel log buffer down to its last lines, saying how many were left out.</summary>
internal static class VerifierLog
{
    public const int TailLines = 20;

    public static string Tail(ReadOnlySpan<byte> buffer, int lines = TailLines)
    {
        int end = buffer.IndexOf((byte)0);
        string text = Encoding.UTF8.GetString(end < 0 ? buffer : buffer[..end]).TrimEnd('\n', ' ');
        if (text.Length == 0)
        {
            return "";
        }

        string[] all = text.Split('\n');
        if (all.Length <= lines)
        {
            return text;
        }

        return $"({all.Length - lines} earlier lines omitted)\n" + string.Join('\n', all[^lines..]);
    }
}
