using Accel.Native.Bpf;

namespace Accel.Native.Loading;

/// <summary>A map as the object declares it (struct accel_map_def in section <c>accel_maps</c>).</summary>
internal sealed record MapSpec(string Name, BpfMapType Type, uint KeySize, uint ValueSize, uint MaxEntries, uint Flags)
{
    /// <summary>SK_STORAGE maps can only be created with BTF for key and value.</summary>
    public bool NeedsBtf => Type == BpfMapType.SkStorage;
}
