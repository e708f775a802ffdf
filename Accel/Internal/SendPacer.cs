using System.Diagnostics;
using System.Net.Sockets;
using Accel.Native.Abi;

namespace Accel.Internal;

/// <summary>
/// Keeps one writer's redirected-but-unread bytes within the backlog bound by waiting for its reader, so that the
/// kernel never has to move the direction to TCP (which is for life: TCP to redirect could reorder bytes).
/// </summary>
/// <remarks>
/// The writer counts what it hands to the socket; the reader publishes its running total: its first report (after a
/// sixteenth of the bound) in accel_consumed, with one syscall, and every later one in its slot of shared memory
/// (<see cref="ReportSlots"/>), or by syscall per sixteenth where it has no slot; the kernel's own check reads the
/// same. The writer may then send while <c>sent - consumed + count &lt;= bound</c>: the kernel sees at most
/// <c>sent</c> redirected and at least that <c>consumed</c>, so its check cannot trip. Reports lag the reader by less
/// than a report step (a sixteenth of the bound; by less than a quarter of that once the reader has a slot), so a
/// writer that sees less than that unread goes ahead whatever its size: the reader may be waiting for exactly these
/// bytes. Waiting polls the map with a timer (1 ms, backing off to 16 ms while the reader makes no progress):
/// processes cannot wake each other through a BPF map, and the wait only happens at the bound.
/// </remarks>
internal sealed class SendPacer(AccelerationEngine engine, Socket socket, AccelKey peerKey)
{
    private const int TcpInfo = 11, TcpEstablished = 1, MaxDelayMs = 16;
    private readonly long _bound = engine.BacklogBytes;
    private readonly long _step = engine.ReportStep;
    private long _sent;
    private long _consumedSeen;
    private bool _off;
    private long _pacedWrites;
    private long _pacedTicks;

    public long PacedWrites => Interlocked.Read(ref _pacedWrites);

    public long PacedTicks => Interlocked.Read(ref _pacedTicks);

    public ValueTask WaitAsync(long count, CancellationToken cancellationToken)
    {
        if (_off || count <= 0 || _sent + count - _consumedSeen <= _bound)
        {
            _sent += count;
            return ValueTask.CompletedTask;
        }

        return WaitForRoomAsync(count, cancellationToken);
    }

    private async ValueTask WaitForRoomAsync(long count, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        bool waited = false;
        int delayMs = 1;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long before = _consumedSeen;
            if (!Refresh())
            {
                _off = true; // from now on the kernel alone decides, as for a writer that does not pace
                break;
            }

            long unread = _sent - _consumedSeen;
            if (unread + count <= _bound || unread < _step)
            {
                break;
            }

            waited = true;
            delayMs = _consumedSeen > before ? 1 : Math.Min(delayMs * 2, MaxDelayMs);
            await Task.Delay(delayMs, cancellationToken).ConfigureAwait(false);
        }

        _sent += count;
        if (waited)
        {
            Interlocked.Increment(ref _pacedWrites);
            Interlocked.Add(ref _pacedTicks, Stopwatch.GetTimestamp() - start);
            engine.CountPacedWrite();
        }
    }

    /// <summary>Reads the reader's progress; false when waiting cannot help any more: the peer is not (or no longer)
    /// in the fast path or does not report, this direction already uses TCP, or the connection is closing.</summary>
    private bool Refresh()
    {
        var (present, reports, consumed) = engine.ReadPeerConsumed(peerKey);
        if (!present || !reports)
        {
            return false;
        }

        _consumedSeen = Math.Max(_consumedSeen, consumed);
        return engine.ReadState(socket) is { Verdict: not AccelSockState.VerdictTcp } && IsEstablished();
    }

    /// <summary>A peer that closed or died (FIN or RST received) will never read what waits: stop waiting, and let the
    /// write fail as it would on TCP.</summary>
    private bool IsEstablished()
    {
        Span<byte> info = stackalloc byte[8];
        try
        {
            return socket.GetRawSocketOption((int)SocketOptionLevel.Tcp, TcpInfo, info) > 0 && info[0] == TcpEstablished;
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
            return false;
        }
    }
}
