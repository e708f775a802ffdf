using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// One connection's pending read, passed to its caller through an observer (which counts what was read): the caller
/// awaits this instance, and when the wrapped read completes its result goes through the observer and then on to the
/// caller. One instance serves every read of a connection, one at a time, so a read that has to wait allocates nothing of
/// the library's own beyond the thread pool's work item for the wrapped read's completion (32 bytes).
/// <para>An async method in its place allocated its state machine box from a pool per method, which missed whenever a
/// thread finished a read of one kind (the server's) and then started one of the other (the client's): in a service
/// that is both, such as a YARP gateway, the two boxes came to about 300 bytes per request.</para>
/// </summary>
internal sealed class ObservedRead<T> : IValueTaskSource<T>
{
    private readonly Func<T, T> _observe;
    private readonly Action _onReadCompleted;
    private ManualResetValueTaskSourceCore<T> _core;
    private ConfiguredValueTaskAwaitable<T>.ConfiguredValueTaskAwaiter _read;
    private int _busy;

    public ObservedRead(Func<T, T> observe)
    {
        _observe = observe;
        _onReadCompleted = OnReadCompleted;
    }

    /// <summary>Takes <paramref name="read"/>, which has not completed yet, and gives the caller's view of it; false while
    /// an earlier read is still the instance's (the caller then observes this one another way).</summary>
    public bool TryObserve(ValueTask<T> read, out ValueTask<T> observed)
    {
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            observed = default;
            return false;
        }

        _core.Reset();
        observed = new ValueTask<T>(this, _core.Version);
        _read = read.ConfigureAwait(false).GetAwaiter();
        _read.UnsafeOnCompleted(_onReadCompleted);
        return true;
    }

    private void OnReadCompleted()
    {
        var read = _read;
        _read = default;
        T result;
        try
        {
            result = _observe(read.GetResult());
        }
        catch (Exception e)
        {
            _core.SetException(e);
            return;
        }

        _core.SetResult(result);
    }

    public T GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
