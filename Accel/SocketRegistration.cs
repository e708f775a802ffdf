using System.Diagnostics;
using System.Net.Sockets;
using Accel.Internal;
using Accel.Native.Abi;

namespace Accel;

/// <summary>One socket's place in the fast path (or the reason it has none), and its own figures.</summary>
public sealed class SocketRegistration
{
    private readonly AccelerationEngine _engine;
    private readonly Socket _socket;
    private readonly long _storeEvery;
    private readonly SendPacer? _pacer;
    private JoinResult? _join; // null until read from the kernel (a registration made on first use)
    private readonly long _reportEvery;
    private ConnectionStatistics? _last;
    private long _lastReported;
    private ReportSlot? _slot;
    private bool _noSlot;
    private volatile bool _left;
    private readonly bool _window;
    private int _windowSettled;
    private volatile bool _final; // the figures were read at the writer's end (SettleWindow): they stay
    private long _absorbed; // bytes of sends to a closed peer counted as done (AbsorbsSendToClosedPeer)

    /// <summary>A registration whose outcome is known.</summary>
    internal SocketRegistration(AccelerationEngine engine, Socket socket, JoinResult join, long reportEvery = 0, bool window = false)
        : this(engine, socket, join.IsRegistered ? reportEvery : 0, paced: join.IsRegistered, window)
    {
        _join = join;
    }

    /// <summary>A registration of a socket that was opted in, read from the kernel only when something needs it: a
    /// report, a wait, the check after the first write, its outcome or figures. A connection that carries one small
    /// exchange then pays no syscall for it, or shares the one of its first write's check.</summary>
    internal SocketRegistration(AccelerationEngine engine, Socket socket, long reportEvery, bool window = false)
        : this(engine, socket, reportEvery, paced: true, window)
    {
    }

    private SocketRegistration(AccelerationEngine engine, Socket socket, long reportEvery, bool paced, bool window)
    {
        _window = window && paced;
        _engine = engine;
        _socket = socket;
        _reportEvery = reportEvery;
        _storeEvery = Math.Max(1, reportEvery / 4);
        _pacer = paced ? new SendPacer(engine, socket, this) : null;
    }

    /// <summary>What registration did.</summary>
    public RegistrationOutcome Outcome => Join.Outcome;

    /// <summary>The socket is in the fast path (its sends are redirected when its peer's is too).</summary>
    public bool IsRegistered => Outcome == RegistrationOutcome.Registered;

    /// <summary>Why the socket is not (fully) in the fast path, or <c>null</c>.</summary>
    public string? Detail => Join.Detail;

    /// <summary>
    /// Tells the fast path how many bytes the application has read from this socket so far (a running total,
    /// never decreasing). The peer's redirected writes may run at most <c>MaxRedirectedBacklogBytes</c> ahead of
    /// it; a reader that never reports lets its peer redirect that many bytes, after which the peer's
    /// direction continues on TCP. Call it from the reading code after each read (one reader at a time): until
    /// the reader has read a sixteenth of the bound it costs a subtraction; then one syscall gives it a slot in
    /// shared memory, and from then on a memory store per 64th of the bound read, no syscall (where no slot is
    /// free: one syscall per sixteenth of the bound). The ASP.NET Core transport and HttpClient handler do this
    /// themselves. Does nothing where the kernel tracks consumption on its own.
    /// </summary>
    public void ReportConsumed(long totalBytesRead)
    {
        if (_slot is { } slot)
        {
            // A store per quarter of a step (64 KiB of the default bound), not per read: a read of a few bytes pays a
            // subtraction, and what the writer sees lags by less than that.
            if (totalBytesRead - _lastReported < _storeEvery)
            {
                return;
            }

            _lastReported = totalBytesRead;
            if (slot.TryWrite(totalBytesRead))
            {
                return;
            }

            // The slot is no longer this reader's: the kernel marked it when the connection closed. Should it ever be
            // marked otherwise, a reader that stopped reporting would leave its peer's writer waiting for good, so
            // reports go by syscall from here on (on a closed connection they find no entry and do nothing).
            _slot = null;
            _noSlot = true;
            _engine.WriteConsumed(Join.Key, totalBytesRead);
            return;
        }

        if (_reportEvery > 0 && totalBytesRead - _lastReported >= _reportEvery && !PassesThrough)
        {
            JoinResult join = Join;
            if (!join.IsRegistered)
            {
                return; // no peer can redirect to it: nothing to report (and from now on it passes through)
            }

            _lastReported = totalBytesRead;
            _slot = _noSlot ? null : _engine.TryTakeReportSlot(join.Key, totalBytesRead);
            if (_slot is null)
            {
                _engine.WriteConsumed(join.Key, totalBytesRead);
            }
        }
    }

    /// <summary>
    /// Call before writing <paramref name="count"/> bytes to the socket, with every byte the socket sends (one
    /// writer at a time). A redirected write never blocks, so a writer can get far ahead of its reader; past
    /// <c>MaxRedirectedBacklogBytes</c> unread, the kernel moves the direction to TCP for the rest of the
    /// connection. This waits instead, asynchronously, until the reader has consumed enough, so that the direction
    /// stays in the fast path. It completes at once (no syscall) while there is room, and whenever waiting
    /// cannot help: the socket is not in the fast path, its direction already uses TCP, its peer's reader does not
    /// report consumption (see <see cref="AccelerationEngine.PrepareListener"/>), or the connection is
    /// closing. A single write larger than fifteen sixteenths of the bound may still move the direction to TCP.
    /// </summary>
    /// <param name="count">Bytes about to be written.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    public ValueTask WaitToSendAsync(long count, CancellationToken cancellationToken = default)
        => _pacer is null || PassesThrough ? ValueTask.CompletedTask : _pacer.WaitAsync(count, cancellationToken);

    /// <summary>Whether <see cref="TryLeaveFastPath"/> took the socket out of the fast path.</summary>
    internal bool HasLeft => _left;

    /// <summary>Whether what the kernel did with the socket has been read (always, but for a registration made on first use
    /// that nothing has needed yet).</summary>
    internal bool IsSettled => Volatile.Read(ref _join) is not null;

    /// <summary>Whether the socket is known to be out of the fast path (it left, or was never in it): its reads need
    /// no counting and its writes no pacing.</summary>
    internal bool PassesThrough => _left || Volatile.Read(ref _join) is { IsRegistered: false };

    /// <summary>Whether the socket is out of the fast path (it left, or was never in it), read from the kernel (one syscall)
    /// if nothing has needed that yet.</summary>
    internal bool IsOutOfFastPath() => _left || !Join.IsRegistered;

    /// <summary>What the kernel did with the socket; read from it (one syscall) the first time a registration made on first
    /// use needs it.</summary>
    internal JoinResult Join => Volatile.Read(ref _join) ?? Decided(_engine.ReadJoin(_socket));

    /// <summary>Keeps the first outcome read (every read of the same socket finds the same one).</summary>
    internal JoinResult Decided(JoinResult join) => Interlocked.CompareExchange(ref _join, join, null) ?? join;

    /// <summary>
    /// Call once after the socket's first write has returned. When that write found no peer in the fast path (its
    /// verdict is TCP, "peer absent": a same-host server without the library), the socket would pay the fast path's
    /// sk_msg program and copy on every send for nothing. The kernel made sure at that write that nothing can be
    /// redirected into the socket any more, so it can leave the map, unless redirected bytes are still waiting to be
    /// read (a peer that wrote and closed before the first write), which leaving would discard. Reads the socket's state
    /// (one syscall, which also settles a registration made on first use); leaving costs up to four more. Its figures
    /// stop at this point; it stays on TCP for life.
    /// </summary>
    internal bool TryLeaveFastPath()
    {
        if (PassesThrough || !_engine.TryLeave(_socket, this))
        {
            return false;
        }

        _left = true;
        return true;
    }

    /// <summary>
    /// Call once when the connection's writer is done (it will announce nothing more), before the socket closes, on a
    /// socket with windows (<see cref="AccelerationEngine.OptInWithWindows"/>): the kernel counts a
    /// window's bytes when its program next runs, which it does not once the writer stops, so the bytes this writer sent
    /// in its last window are counted here, for the process's figures (one syscall). <paramref name="unannounced"/>: bytes
    /// handed to the socket without <see cref="WaitToSendAsync"/> (committed unpaced at completion), which it will send
    /// still. Bytes the writer announced that the connection never sends (it is aborted) may be counted too, at most the
    /// window. After this the connection's figures stay as they are now.
    /// </summary>
    internal void SettleWindow(long unannounced = 0)
    {
        if (!_window || PassesThrough || Interlocked.Exchange(ref _windowSettled, 1) != 0 || Written is not long written)
        {
            return;
        }

        written += unannounced;
        if (written == 0 || _engine.ReadState(_socket) is not { } state)
        {
            return;
        }

        // More than the window beyond what the kernel counted: the program runs again for the rest, and counts the window
        // itself then.
        long uncounted = written - (long)state.TcpBytes - (long)state.RedirectedBytes;
        if (uncounted > 0 && uncounted <= state.Window)
        {
            _engine.CountSettledWindow(uncounted);
        }

        _last = AccelerationEngine.Describe(state, written);
        _final = true;
    }

    /// <summary>
    /// Whether a send of <paramref name="count"/> bytes that failed with <paramref name="error"/> failed only because its
    /// peer has closed, and then counts it as done, as TCP takes such sends. Over TCP a send to a peer that has closed
    /// goes into the socket's buffers and out to the peer, which answers with a reset; sends fail only after the reset
    /// is back, so a writer usually gets everything it wrote quickly enough out without an error, and then reads what the
    /// peer answered before it closed: an HTTP client reads the end of an idle connection and sends its request again on
    /// a new one, or reads the response of a server that answered early and closed (a 400 or 413 to a large upload),
    /// where a failed send would fail the request. Through the fast path such a send fails at once: inside a window
    /// (whose target is fixed when it opens) because the peer no longer takes redirected bytes, after it because the
    /// send went out on TCP and met the reset. So, on a socket with windows whose peer has closed (this end got its FIN,
    /// or gets it within milliseconds: a closing peer stops taking redirected bytes just before it sends its FIN; or
    /// the peer's reset came after its FIN: EPIPE in state CLOSE), up to the backlog bound in all (what TCP's buffers
    /// would take; a writer that goes on past it, such as an endless upload, fails as on TCP). A send that fails for any
    /// other reason fails as before, a reset without a FIN (ECONNRESET) among them. No peer could ever read these bytes;
    /// they are taken back from what the writer announced, so the figures do not count them, and what the peer sent
    /// before it closed stays readable (a reset takes a socket out of neither TCP's receive queue nor the fast path's).
    /// </summary>
    internal bool AbsorbsSendToClosedPeer(Exception error, long count)
    {
        if (!_window || PassesThrough || error is not IOException { InnerException: SocketException { SocketErrorCode: SocketError.Shutdown } }
            || _absorbed + count > _engine.BacklogBytes || !PeerHasClosed())
        {
            return false;
        }

        _absorbed += count;
        _pacer?.Retract(count);
        return true;
    }

    private bool PeerHasClosed()
    {
        long deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 50; // 20 ms
        while (true)
        {
            int state = TcpStates.Read(_socket);
            if (state != TcpStates.Established || Stopwatch.GetTimestamp() > deadline)
            {
                return state is TcpStates.CloseWait or TcpStates.Close;
            }

            Thread.Sleep(1);
        }
    }

    /// <summary>What the writer of a socket with windows announced it sent (<see cref="WaitToSendAsync"/>); null without
    /// windows.</summary>
    private long? Written => _window ? _pacer?.Sent : null;

    /// <summary>This socket's figures, read from the kernel (one syscall). After the socket is closed,
    /// the last figures read are returned.</summary>
    public ConnectionStatistics GetStatistics()
    {
        JoinResult join = Join;
        if (join.IsRegistered && !_final && _engine.ReadConnection(_socket, Written) is { } now)
        {
            _last = now;
        }

        ConnectionStatistics last = _last ??= new ConnectionStatistics(join.IsRegistered ? DirectionPath.Undecided : DirectionPath.Tcp, join.Detail, 0, 0, 0, 0);
        return _pacer is null ? last : last with { PacedWrites = _pacer.PacedWrites, PacedTime = Stopwatch.GetElapsedTime(0, _pacer.PacedTicks) };
    }
}
