using System.Runtime.InteropServices;

namespace Accel.Benchmarks;

/// <summary>Runs a function on a dedicated thread switched into a network namespace: sockets created there
/// belong to that namespace for their whole life, whichever thread uses them later.</summary>
internal static partial class InNamespace
{
    private const int CloneNewNet = 0x40000000;

    public static T Run<T>(string ns, Func<T> create)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var target = File.OpenHandle($"/run/netns/{ns}");
                if (setns((int)target.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new IOException($"setns({ns}) failed: errno {Marshal.GetLastPInvokeError()}");
                }

                result = create(); // the thread ends here: no need to switch back
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        return error is null ? result : throw new InvalidOperationException($"in namespace {ns}: {error.Message}", error);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);
}
