namespace Accel.Native.Loading;

/// <summary>The compiled BPF objects embedded in this assembly.</summary>
internal static class EmbeddedObjects
{
    /// <summary>The fast-path object, <c>bpf/accel.bpf.o</c>.</summary>
    public static BpfObjectSpec Accel => s_accel.Value;

    private static readonly Lazy<BpfObjectSpec> s_accel = new(() => BpfObjectSpec.Parse(Read("accel.bpf.o")));

    public static byte[] Read(string fileName)
    {
        string resource = "Accel.Native.bpf." + fileName;
        using Stream s = typeof(EmbeddedObjects).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"Embedded resource '{resource}' is missing: the assembly was built without its BPF object.");
        var buffer = new MemoryStream();
        s.CopyTo(buffer);
        return buffer.ToArray();
    }
}
