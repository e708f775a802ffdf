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
/// bytes.
/// <para>Waiting polls the map: processes cannot wake each other through a BPF map, and the wait only happens at the
/// bound. A writer that had to wait goes on once there is room for its write and for at least a quarter of the bound,
/// so that one wait covers several small writes, and a writer polled in time finds its reader with half the bound or
/// more still to read (writes are at most half of it). It polls again after about the time the reader needs to make
/// that room at the fastest pace it was seen to read (from 50 us to 2 ms, through <see cref="PacingClock"/>:
/// Task.Delay's millisecond ticks came about 4 ms late while the CPUs moved the bytes, and the reader ran dry
/// meanwhile), and backs off to 16 ms while the reader makes no progress.</para>
/// </remarks>
internal sealed class SendPacer(AccelerationEngine engine, Socket socket, SocketRegistration registration)
{
    private static readonly long MinDelay = Stopwatch.Frequency / 20_000; // 50 us
    private static readonly long MaxEstimatedDelay = Stopwatch.Frequency / 500; // 2 ms: a reader making progress is polled at least this often
    private static readonly long MaxDelay = Stopwatch.Frequency / 62; // 16 ms
    private readonly long _bound = engine.BacklogBytes;
    private readonly long _gap = Math.Max(1, engine.BacklogBytes / 4);
    private readonly long _step = engine.ReportStep;
    private long _sent;
    private long _consumedSeen;
    private uint _slot, _tag; // the reader's slot in shared memory, once it has one and the writer has seen it
    private double _ticksPerByte; // the fastest pace seen of the reader while the writer waited; 0: not measured yet
    private bool _off;
    private long _pacedWrites;
    private long _pacedTicks;

    public long PacedWrites => Interlocked.Read(ref _pacedWrites);

    /// <summary>Every byte announced so far (<see cref="WaitAsync"/>), the writer's own count of what it sent.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    public long PacedTicks => Interlocked.Read(ref _pacedTicks);

    public ValueTask WaitAsync(long count, CancellationToken cancellationToken)
    {
        if (_off || count <= 0 || HasRoom(count))
        {
            _sent += count;
            return ValueTask.CompletedTask;
        }

        return WaitForRoomAsync(count, cancellationToken);
    }

    /// <summary>Whether <paramref name="count"/> more bytes keep the reader's unread bytes within the bound, by what was last
    /// seen of its consumption, or else by its slot: a memory read, so that a writer that keeps the reader's queue full
    /// (every write past the bound by what it saw last) pays no syscall while the reader keeps up.</summary>
    private bool HasRoom(long count)
    {
        if (_sent + count - _consumedSeen <= _bound)
        {
            return true;
        }

        if (_slot != 0 && engine.ReadReportSlot(_slot, _tag) is long total && total > _consumedSeen)
        {
            _consumedSeen = total;
            return _sent + count - _consumedSeen <= _bound;
        }

        return false;
    }

    private async ValueTask WaitForRoomAsync(long count, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        long polledAt = start;
        long delay = MinDelay;
        long resumeRoom = Math.Max(count, _gap); // once waiting: room for the write and at least a quarter of the bound
        bool waited = false;
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
            if (unread + (waited ? resumeRoom : count) <= _bound || unread < _step)
            {
                break;
            }

            long now = Stopwatch.GetTimestamp();
            bool progress = _consumedSeen > before;
            if (progress && waited)
            {
                // The fastest pace seen, slowly forgotten: a reader that ran dry while the writer slept looks slower than
                // it is, and sleeping longer by that would starve it more.
                double measured = (double)(now - polledAt) / (_consumedSeen - before);
                _ticksPerByte = _ticksPerByte == 0 ? measured : Math.Min(measured, _ticksPerByte * 1.1);
            }

            delay = !waited || progress
                ? (long)Math.Clamp((unread + resumeRoom - _bound) * _ticksPerByte, MinDelay, MaxEstimatedDelay)
                : Math.Min(delay * 2, MaxDelay);
            polledAt = now;
            waited = true;
            await PacingClock.DelayAsync(TimeSpan.FromSeconds((double)delay / Stopwatch.Frequency), cancellationToken).ConfigureAwait(false);
        }

        _sent += count;
        if (waited)
        {
            Interlocked.Increment(ref _pacedWrites);
            Interlocked.Add(ref _pacedTicks, Stopwatch.GetTimestamp() - start);
            engine.CountPacedWrite();
        }
    }

    /// <summary>Reads the reader's progress; false when waiting cannot help any more: this socket or the peer is not (or
    /// no longer) in the fast path or does not report, this direction already uses TCP, or the connection is closing.</summary>
    private bool Refresh()
    {
        // The registration's outcome, read now if nothing needed it before (a socket not in the fast path has nothing to pace).
        if (registration.Join is not { IsRegistered: true } join)
        {
            return false;
        }

        var (present, reports, consumed, slot, tag) = engine.ReadPeerConsumed(join.Key.Peer);
        if (!present || !reports)
        {
            return false;
        }

        (_slot, _tag) = (slot, tag);
        _consumedSeen = Math.Max(_consumedSeen, consumed);
        return engine.ReadState(socket) is { Verdict: not AccelSockState.VerdictTcp } && IsEstablished();
    }

    /// <summary>A peer that closed or died (FIN or RST received) will never read what waits: stop waiting, and let the
    /// write fail as it would on TCP.</summary>
    private bool IsEstablished() => TcpStates.Read(socket) == TcpStates.Established;

    /// <summary>Takes back <paramref name="count"/> announced bytes that were never sent: a send that
    /// <see cref="SocketRegistration.AbsorbsSendToClosedPeer"/> counted as done.</summary>
    public void Retract(long count) => Interlocked.Exchange(ref _sent, Math.Max(0, _sent - count));
}
