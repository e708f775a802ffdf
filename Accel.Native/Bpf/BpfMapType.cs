namespace Accel.Native.Bpf;

/// <summary>Map types (values from <c>linux/bpf.h</c>).</summary>
internal enum BpfMapType : uint
{
    Hash = 1,
    LruHash = 9,
    Array = 2,
    LruPercpuHash = 10,
    LpmTrie = 11,
    SockHash = 18,
    SkStorage = 24,
}

/// <summary>Program types (values from <c>linux/bpf.h</c>).</summary>
internal enum BpfProgramType : uint
{
    CgroupSock = 9,
    SockOps = 13,
    SkSkb = 14,
    SkMsg = 16,
    Tracing = 26,
}

/// <summary>Attach types (values from <c>linux/bpf.h</c>).</summary>
internal enum BpfAttachType : uint
{
    CgroupInetSockCreate = 2,
    CgroupSockOps = 3,
    CgroupInet4PostBind = 12,
    SkSkbStreamParser = 4,
    SkSkbStreamVerdict = 5,
    SkMsgVerdict = 7,
    SkSkbVerdict = 38,
    TraceFexit = 25,
}

/// <summary>Flags (values from <c>linux/bpf.h</c>).</summary>
internal static class BpfFlags
{
    public const ulong Any = 0;
    public const ulong NoExist = 1;
    public const ulong Exist = 2;
    public const uint NoPrealloc = 1;
    public const uint Clone = 1u << 9;
    public const uint Mmapable = 1u << 10;
    public const uint AllowMulti = 2;
}
