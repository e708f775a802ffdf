using System.Runtime.InteropServices;

namespace Accel.Native.Interop;

/// <summary>The errno values the library reacts to, and a readable name for any errno.</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int E2BIG = 7;
    public const int ENOSYS = 38;
    public const int ENOTSUP = 95;
    public const int EOPNOTSUPP = 95;

    /// <summary>"EPERM (1): Operation not permitted".</summary>
    public static string Describe(int errno)
    {
        string name = errno switch
        {
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            EBADF => "EBADF",
            E2BIG => "E2BIG",
            EAGAIN => "EAGAIN",
            ENOMEM => "ENOMEM",
            EACCES => "EACCES",
            EBUSY => "EBUSY",
            EEXIST => "EEXIST",
            ENOTDIR => "ENOTDIR",
            EINVAL => "EINVAL",
            ENOSPC => "ENOSPC",
            EROFS => "EROFS",
            ENOSYS => "ENOSYS",
            EOPNOTSUPP => "EOPNOTSUPP",
            _ => "errno",
        };
        return $"{name} ({errno}): {Marshal.GetPInvokeErrorMessage(errno)}";
    }
}
