namespace Accel.Testing;

/// <summary>The repository a test or tool runs from, found from its output directory.</summary>
internal static class Repository
{
    /// <summary>The directory that holds Accel.sln.</summary>
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Accel.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"Accel.sln not found above {AppContext.BaseDirectory}.");
        }
    }
}
