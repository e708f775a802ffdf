using System.Diagnostics;
using System.Runtime.InteropServices;
using Accel.Native.Abi;
using Accel.Native.Interop;
using Accel.Native.Pinning;
using Microsoft.Extensions.Logging;

namespace Accel.Internal;

/// <summary>
/// Reports what the readers of this process's sockets consumed when nobody else does: the sockets a process in
/// scope opens or accepts through a third-party client (a database driver, a cache client, a raw socket), whose
/// reads the library never sees and this kernel cannot trace.
/// </summary>
/// <remarks>
/// Without reports, a writer may redirect only its first bound's worth of bytes. The tracker gives every socket of
/// the process that the kernel put into the fast path a slot in a shared, memory-mapped BPF array, soon after the
/// kernel inserted it (it looks for new sockets when the engine's count of inserted sockets moves, which it reads
/// every 10 ms, and twice more in the next second, for a server's sockets accepted after it looked). Once a writer is
/// past a quarter of its bound, its sk_msg program writes its redirected total into its reader's slot and bumps the
/// block's change count. Every millisecond (every fourth when nothing moved for 100 ms) the tracker reads the change counts of its blocks from memory, without a
/// syscall, and for a slot that moved publishes <c>sent - FIONREAD</c>, a lower bound of what the reader consumed
/// (every byte of <c>sent</c> is already queued or read), with two syscalls: FIONREAD and the map update. Closing a
/// connection marks its slot, which frees it. A writer near its bound
/// whose reader has no slot yet bumps the first block's waiting count, and the tracker then checks every descriptor.
/// Idle connections cost nothing but a slot.
/// <para>
/// It also takes out of the map the sockets whose first send found no peer (a same-host database or cache without the
/// library), which would otherwise pay the sk_msg path on every send for a verdict of TCP
/// (<see cref="KernelFastPath.TryLeave(int, AccelSockState, AccelKey)"/>: the same rule as the library's HTTP
/// client's). The sk_msg program marks such a socket's slot, or, when it has none yet, bumps the first block's count of
/// them, after which the tracker checks every descriptor.
/// </para>
/// </remarks>
internal sealed unsafe class ConsumptionTracker : IDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan QuietPeriod = TimeSpan.FromMilliseconds(4);
    private static readonly TimeSpan QuietAfter = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan DiscoverAtMostEvery = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan LookAgainFirst = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LookAgainLast = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan SweepEvery = TimeSpan.FromSeconds(30); // a safety net: closing marks the slot

    private readonly KernelFastPath _kernel;
    private readonly IKernel _os;
    private readonly ulong _owner;
    private readonly int _block;
    private readonly ILogger _logger;
    private readonly ulong* _entries; // the whole array: slots are global indices
    private readonly nint _mapping;
    private readonly long _mappingLength;
    private readonly Dictionary<int, Tracked> _tracked = new();
    private readonly HashSet<int> _known = new(); // descriptors checked and found not to need a slot
    private readonly List<int> _descriptors = new(); // the last listing (reused)
    private readonly Stack<int> _freeSlots = new();
    private readonly List<int> _blocks = new();
    private readonly Dictionary<int, ulong> _changedSeen = new();
    private readonly List<KernelFd> _leases = new(); // one per block: a block is this tracker's while it holds the lock
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private ulong _waitingSeen;
    private ulong _absentSeen;
    private ulong _insertedSeen;
    private long _publications;
    private long _left;

    private sealed class Tracked(int fd, AccelKey key, int slot, uint tag)
    {
        public int Fd { get; } = fd;
        public AccelKey Key { get; } = key;
        public int Slot { get; } = slot;
        public uint Tag { get; } = tag;
        public ulong Published { get; set; }
    }

    private ConsumptionTracker(KernelFastPath kernel, ulong owner, KernelFd lease, int block, nint mapping, long length, ILogger logger)
    {
        _kernel = kernel;
        _os = kernel.Bpf.Kernel;
        _owner = owner;
        _block = block;
        _logger = logger;
        _mapping = mapping;
        _mappingLength = length;
        _entries = (ulong*)mapping;
        _waitingSeen = Volatile.Read(ref _entries[WaitingIndex]);
        _absentSeen = Volatile.Read(ref _entries[AbsentIndex]);
        AddBlock(lease, block);
        _thread = new Thread(Run) { IsBackground = true, Name = "Accel read tracker" };
        _thread.Start();
    }

    /// <summary>1 + this tracker's first block: what the sockets it tracks carry in their config.</summary>
    public uint Id => (uint)_block + 1;

    /// <summary>Where writers whose reader has no slot yet count themselves: in this tracker's first block.</summary>
    private long WaitingIndex => (long)_block * AccelTrack.Block + AccelTrack.Waiting;

    /// <summary>Where first sends that found no peer from sockets without a slot are counted: in the first block.</summary>
    private long AbsentIndex => (long)_block * AccelTrack.Block + AccelTrack.Absent;

    /// <summary>The tracker thread's kernel id (for measuring its CPU time); 0 until it runs.</summary>
    public int ThreadId { get; private set; }

    /// <summary>Sockets that have a slot now.</summary>
    public int TrackedSockets { get { lock (_tracked) { return _tracked.Count; } } }

    /// <summary>Reports published since start.</summary>
    public long Publications => Interlocked.Read(ref _publications);

    /// <summary>Sockets taken out of the map since start, as their first send found no peer.</summary>
    public long LeftFastPath => Interlocked.Read(ref _left);

    /// <summary>Takes a free block of the shared array, maps the array and starts tracking; null (with the reason in
    /// <paramref name="problem"/>) when every block is held or the array cannot be mapped.</summary>
    public static ConsumptionTracker? Start(KernelFastPath kernel, ulong owner, ILogger logger, out string? problem)
    {
        if (TrackerBlocks.TryTake(kernel.Bpf.Kernel, kernel.Store.Directory, AccelTrack.Blocks) is not var (lease, block))
        {
            problem = "every tracker block of the host is taken";
            return null;
        }

        int r = kernel.MapTrack(out nint mapping, out long length);
        if (r < 0)
        {
            lease.Dispose();
            problem = $"mapping {AbiNames.Track} failed: {Errno.Describe(-r)}";
            return null;
        }

        problem = null;
        return new ConsumptionTracker(kernel, owner, lease, block, mapping, length, logger);
    }

    public void Dispose()
    {
        _stop.Cancel();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }

        _os.Unmap(_mapping, _mappingLength);
        foreach (KernelFd lease in _leases)
        {
            lease.Dispose();
        }

        _stop.Dispose();
    }

    private void Run()
    {
        ThreadId = (int)gettid();
        // A writer near its bound has only the rest of the bound's worth of bytes to wait for this thread: on a busy
        // machine, let it run first when it wakes (it uses little CPU). Allowed with CAP_SYS_NICE; harmless without.
        setpriority(0 /* PRIO_PROCESS */, (uint)ThreadId, -10);

        long lastSweep = Stopwatch.GetTimestamp(), lastDiscovery = 0, lastInsertedRead = 0;
        long lastChange = 0;
        TimeSpan lookAgainAfter = TimeSpan.Zero; // zero: no pass pending
        while (!_stop.IsCancellationRequested)
        {
            // Every millisecond while writers are near their bounds; every fourth after 100 ms without (wakeups cost).
            // A plain sleep: stopping waits for the end of it, at most a few milliseconds.
            FineSleep.For(Stopwatch.GetElapsedTime(lastChange) < QuietAfter ? Period : QuietPeriod);
            if (_stop.IsCancellationRequested)
            {
                break;
            }

            try
            {
                ulong waiting = Volatile.Read(ref _entries[WaitingIndex]);
                if (waiting != _waitingSeen)
                {
                    // A writer is near its bound and its reader has no slot: check every descriptor, known ones too
                    // (a number can have been reused by a socket the cheap pass took for the old one).
                    _waitingSeen = waiting;
                    Discover(everyDescriptor: true);
                    lastDiscovery = Stopwatch.GetTimestamp();
                }
                else if (Stopwatch.GetElapsedTime(lastDiscovery) >= DiscoverAtMostEvery)
                {
                    bool due = lookAgainAfter > TimeSpan.Zero && Stopwatch.GetElapsedTime(lastDiscovery) >= lookAgainAfter;
                    ulong absent = Volatile.Read(ref _entries[AbsentIndex]);
                    if (absent != _absentSeen)
                    {
                        // A socket without a slot found no peer at its first send, to take out of the map. Every
                        // descriptor: it may have taken the number of a socket the cheap pass remembers (one that closed
                        // between two listings). One syscall per socket, at most every 10 ms, and only when a connection
                        // to a same-host peer without the library starts, which pooled clients do rarely.
                        _absentSeen = absent;
                        Discover(everyDescriptor: true);
                        lastDiscovery = Stopwatch.GetTimestamp();
                    }
                    else if (due || Stopwatch.GetElapsedTime(lastInsertedRead) >= DiscoverAtMostEvery)
                    {
                        // The engine's count of inserted sockets costs a syscall: read at most every 10 ms, not at every
                        // wake-up. It only starts discovery early; a writer nearing its bound reports through memory.
                        lastInsertedRead = Stopwatch.GetTimestamp();
                        ulong inserted = _kernel.ReadOwner(_owner).Inserted;
                        if (inserted != _insertedSeen || due)
                        {
                            // A server's socket is inserted at the handshake but has a descriptor only once the application
                            // accepts it, which may come after this pass: two more passes, 100 ms and then 1 s later, find
                            // it even when nothing else is inserted meanwhile (a later accept still has the waiting count).
                            lookAgainAfter = inserted != _insertedSeen ? LookAgainFirst : lookAgainAfter < LookAgainLast ? lookAgainAfter * 10 : TimeSpan.Zero;
                            _insertedSeen = inserted;
                            Discover(everyDescriptor: false);
                            lastDiscovery = Stopwatch.GetTimestamp();
                        }
                    }
                }

                if (AnyBlockChanged())
                {
                    lastChange = Stopwatch.GetTimestamp();
                    PublishAdvanced();
                }

                if (Stopwatch.GetElapsedTime(lastSweep) > SweepEvery)
                {
                    lastSweep = Stopwatch.GetTimestamp();
                    ForgetClosed();
                }
            }
            catch (Exception e)
            {
                // A tracker that stops only costs the connections their fast path (the kernel bound still holds).
                Log.TrackerFailed(_logger, e);
                return;
            }
        }
    }

    private bool AnyBlockChanged()
    {
        bool changed = false;
        foreach (int block in _blocks)
        {
            ulong count = Volatile.Read(ref _entries[(long)block * AccelTrack.Block + AccelTrack.Changed]);
            if (count != _changedSeen[block])
            {
                _changedSeen[block] = count;
                changed = true;
            }
        }

        return changed;
    }

    /// <summary>Publishes for every tracked reader whose writer has published more since the last look; frees the slots
    /// of closed connections, and of sockets whose first send found no peer, which leave the map.</summary>
    private void PublishAdvanced()
    {
        lock (_tracked)
        {
            List<int>? gone = null;
            foreach (Tracked t in _tracked.Values)
            {
                ulong entry = Volatile.Read(ref _entries[t.Slot]);
                if ((entry >> 48) != t.Tag)
                {
                    continue; // nothing published yet for this connection (or a stale write for the slot's previous one)
                }

                ulong sent = entry & AccelTrack.SentMask;
                if (sent == AccelTrack.PeerAbsent)
                {
                    Leave(t.Fd, t.Key);
                    (gone ??= new()).Add(t.Fd);
                }
                else if ((sent & AccelTrack.Closed) != 0)
                {
                    (gone ??= new()).Add(t.Fd);
                }
                else if (sent > t.Published && !Publish(t, sent))
                {
                    (gone ??= new()).Add(t.Fd);
                }
            }

            foreach (int fd in gone ?? [])
            {
                Release(fd);
            }
        }
    }

    /// <summary>Publishes <c>sent - unread</c>; false when the descriptor no longer holds a socket. A descriptor number is
    /// only reused after the application closed the connection's socket, which takes it out of the fast path: a report
    /// read from the wrong socket can only let the closed reader's writer find its peer gone, and move to TCP.</summary>
    private bool Publish(Tracked t, ulong sent)
    {
        int r = _os.BytesToRead(t.Fd, out int unread);
        if (r < 0)
        {
            return false;
        }

        ulong consumed = sent - Math.Min(sent, (ulong)unread);
        if (consumed <= t.Published)
        {
            return true;
        }

        if (_kernel.WriteFlow(t.Key, Flow(t, consumed, sent)) < 0)
        {
            return false; // closed: its record is gone
        }

        t.Published = consumed;
        Interlocked.Increment(ref _publications);
        return true;
    }

    private AccelFlow Flow(Tracked t, ulong consumed, ulong sent) => new()
    {
        Consumed = (consumed & AccelConsumed.Mask) | AccelConsumed.Reports,
        Sent = sent,
        Tracker = Id,
        Slot = (uint)(t.Slot + 1),
        Tag = t.Tag,
    };

    /// <summary>Gives a slot to every socket of this process that the kernel inserted with this tracker's id and that has
    /// none yet, and tells its record (publishing at once what its writer already published). Without
    /// <paramref name="everyDescriptor"/>, descriptors checked before are skipped.</summary>
    private void Discover(bool everyDescriptor)
    {
        // Names only: a directory enumeration that tells files from directories stat()s every entry, which follows
        // each descriptor's link to its socket and cost about 9 us per descriptor (90 ms a pass at 10,000 sockets).
        List<int> fds = _descriptors;
        if (_os.OpenDescriptors(fds) < 0)
        {
            return;
        }

        lock (_tracked)
        {
            if (everyDescriptor)
            {
                _known.Clear();
            }
            else
            {
                _known.IntersectWith(fds);
            }

            foreach (int fd in fds)
            {
                if (_tracked.ContainsKey(fd) || _known.Contains(fd))
                {
                    continue;
                }

                int read = _kernel.ReadConfig(fd, out AccelSockConfig config);
                if (read < 0 && read != -Errno.ENOENT)
                {
                    // Not a socket (ENOTSOCK), or closed since the listing: not remembered. A file or pipe that closes
                    // frees the lowest number, which the next socket takes; remembered, that socket would never be
                    // looked at by this cheap pass. Looking again costs one syscall per such descriptor and pass.
                    continue;
                }

                if (read < 0 || config.Owner != _owner || config.Tracker != Id)
                {
                    _known.Add(fd); // a socket, not of ours in scope (or the library's own transport's, which report)
                    continue;
                }

                if (_kernel.ReadState(fd, out AccelSockState state) < 0)
                {
                    continue; // not connected yet (or a listener): looked at again next time
                }

                if (state.Join != AccelSockState.JoinInserted || state.Verdict == AccelSockState.VerdictTcp)
                {
                    if (state.Join == AccelSockState.JoinInserted && state.Reason == AccelSockState.ReasonPeerAbsent)
                    {
                        if (_kernel.ReadFlow(state.Key, out _) == 0)
                        {
                            continue; // its first send is under way; the count it bumps once its entry is gone brings us back
                        }

                        Leave(fd, state.Key); // its first send found no peer before it had a slot
                    }

                    _known.Add(fd); // never in the fast path, or no longer: nothing to report
                    continue;
                }

                if (_kernel.ReadFlow(state.Key, out AccelFlow flow) < 0 || !TryTakeSlot(out int slot))
                {
                    continue;
                }

                // The tag first, before the entry names the slot: the kernel writes only a slot that holds its reader's tag.
                var t = new Tracked(fd, state.Key, slot, ReportSlots.Renew(ref _entries[slot], 0));
                _tracked[fd] = t;
                if (!Publish(t, flow.Sent) || (t.Published == 0 && _kernel.WriteFlow(t.Key, Flow(t, 0, flow.Sent)) < 0))
                {
                    Release(fd);
                }
            }
        }
    }

    /// <summary>Frees the slots of connections that closed: the kernel removes a socket's record when it closes. A
    /// socket's first send that found no peer removes it too; one whose mark the tracker missed (it got its slot just
    /// after the send looked for one) leaves the map here.</summary>
    private void ForgetClosed()
    {
        lock (_tracked)
        {
            foreach (Tracked t in _tracked.Values.ToList())
            {
                if (_kernel.ReadFlow(t.Key, out _) < 0)
                {
                    Leave(t.Fd, t.Key);
                    Release(t.Fd);
                }
            }
        }
    }

    /// <summary>Takes the socket out of the map if its first send found no peer and nothing can be lost
    /// (<see cref="KernelFastPath.TryLeave(int, AccelSockState, AccelKey)"/>, which also checks that the descriptor still holds that socket).</summary>
    private void Leave(int fd, AccelKey key)
    {
        if (_kernel.TryLeave(fd, key))
        {
            Interlocked.Increment(ref _left);
        }
    }

    private void Release(int fd)
    {
        if (_tracked.Remove(fd, out Tracked? t))
        {
            Volatile.Write(ref _entries[t.Slot], ReportSlots.Value(t.Tag, 0)); // the tag stays: the slot's next reader gets the one after it
            _freeSlots.Push(t.Slot);
        }
    }

    /// <summary>A free slot; when this tracker's blocks are all in use, it takes another free block of the host's.</summary>
    private bool TryTakeSlot(out int slot)
    {
        if (_freeSlots.TryPop(out slot))
        {
            return true;
        }

        if (TrackerBlocks.TryTake(_os, _kernel.Store.Directory, AccelTrack.Blocks) is not var (lease, block))
        {
            return false;
        }

        AddBlock(lease, block);
        return _freeSlots.TryPop(out slot);
    }

    private void AddBlock(KernelFd lease, int block)
    {
        _leases.Add(lease);
        _blocks.Add(block);
        _changedSeen[block] = Volatile.Read(ref _entries[(long)block * AccelTrack.Block + AccelTrack.Changed]);
        for (int i = AccelTrack.Block - 1; i >= AccelTrack.FirstSlot; i--)
        {
            _freeSlots.Push(block * AccelTrack.Block + i);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern long gettid();

    [DllImport("libc", SetLastError = true)]
    private static extern int setpriority(int which, uint who, int priority);
}
