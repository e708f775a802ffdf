namespace Accel.Native.Pinning;

/// <summary>Directories that only this user can enter (0700), for what instances keep in the pin directory: their
/// leases and their claims.</summary>
internal static class OwnerOnlyDirectory
{
    /// <summary>Creates <paramref name="path"/> (and what is missing above it) owner-only, or finds it there; false when
    /// it cannot be made (or on Windows, which has no pin directory).</summary>
    public static bool TryCreate(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        try
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
