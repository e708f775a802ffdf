using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Accel.Native.Abi;
using Accel.Native.Interop;
using Microsoft.Extensions.Logging;

namespace Accel.Internal;

/// <summary>
/// Reports what the readers of this process's sockets consumed when nobody else does: the sockets a process in
/// scope opens or accepts through a third-party client (a database driver, a cache client, a raw socket), whose
/// reads the library never sees and this kernel cannot trace.
/// </summary>
/// <remarks>
/// Without reports, a writer may redirect only its first bound's worth of bytes. The writer's sk_msg program
/// therefore publishes its redirected total once it is past an eighth of its bound, into this tracker's slot of the
/// shared array, which the tracker reads from memory every millisecond, without a syscall. Every
/// published byte is already in the reader's queue or read, so <c>sent - FIONREAD</c> is a lower bound of what the
/// reader consumed: the tracker publishes that, with three syscalls (FIONREAD, and the socket cookie before and
/// after it, so that a descriptor reused in between is never mistaken for the connection). An idle connection costs
/// nothing; a writer near its bound whose reader has no slot yet bumps the block's first entry, and the tracker then
/// looks through this process's descriptors for new sockets in scope.
/// </remarks>
internal sealed unsafe class ConsumptionTracker : IDisposable
{
    private const int SolSocket = 1, SoCookie = 57;
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan SweepEvery = TimeSpan.FromSeconds(1);

    private readonly KernelFastPath _kernel;
    private readonly IKernel _os;
    private readonly ulong _owner;
    private readonly int _block;
    private readonly ILogger _logger;
    private readonly ulong* _entries;
    private readonly nint _mapping;
    private readonly long _mappingLength;
    private readonly Dictionary<int, Tracked> _tracked = new();
    private readonly Stack<int> _freeSlots = new();
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private ulong _waitingSeen;
    private uint _nextTag;
    private long _publications;
    private long _discoveries;

    private sealed class Tracked(int fd, ulong cookie, AccelKey key, int slot, uint tag)
    {
        public int Fd { get; } = fd;
        public ulong Cookie { get; } = cookie;
        public AccelKey Key { get; } = key;
        public int Slot { get; } = slot;
        public uint Tag { get; } = tag;
        public ulong Published { get; set; }
    }

    private ConsumptionTracker(KernelFastPath kernel, ulong owner, int block, nint mapping, long length, ILogger logger)
    {
        _kernel = kernel;
        _os = kernel.Bpf.Kernel;
        _owner = owner;
        _block = block;
        _logger = logger;
        _mapping = mapping;
        _mappingLength = length;
        _entries = (ulong*)mapping + ((long)block * AccelTrack.Block);
        _waitingSeen = Volatile.Read(ref _entries[0]);
        _nextTag = (uint)Random.Shared.Next(1, 0xffff);
        for (int slot = AccelTrack.Block - 1; slot >= 1; slot--)
        {
            _freeSlots.Push(slot);
        }

        _thread = new Thread(Run) { IsBackground = true, Name = "Accel consumption tracker" };
        _thread.Start();
    }

    /// <summary>1 + this tracker's block: what the sockets it tracks carry in their config.</summary>
    public uint Id => (uint)_block + 1;

    /// <summary>Sockets whose reads it currently reports.</summary>
    public int TrackedSockets { get { lock (_tracked) { return _tracked.Count; } } }

    /// <summary>Reports published since start.</summary>
    public long Publications => Interlocked.Read(ref _publications);

    /// <summary>Times it looked through the process's descriptors for new sockets.</summary>
    public long Discoveries => Interlocked.Read(ref _discoveries);

    /// <summary>Maps the shared array and starts tracking block <paramref name="block"/>; null (with the errno in
    /// <paramref name="problem"/>) when the array cannot be mapped.</summary>
    public static ConsumptionTracker? Start(KernelFastPath kernel, ulong owner, int block, ILogger logger, out string? problem)
    {
        long length = (long)AccelTrack.Block * AccelTrack.Blocks * sizeof(ulong);
        int r = kernel.Bpf.Kernel.MapShared(kernel.Store.Map(AbiNames.Track).Value, length, out nint mapping);
        if (r < 0)
        {
            problem = $"mapping {AbiNames.Track} failed: {Errno.Describe(-r)}";
            return null;
        }

        problem = null;
        return new ConsumptionTracker(kernel, owner, block, mapping, length, logger);
    }

    public void Dispose()
    {
        _stop.Cancel();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }

        _os.Unmap(_mapping, _mappingLength);
        _stop.Dispose();
    }

    private void Run()
    {
        long lastSweep = Stopwatch.GetTimestamp();
        while (!_stop.IsCancellationRequested)
        {
            _stop.Token.WaitHandle.WaitOne(Period);
            try
            {
                ulong waiting = Volatile.Read(ref _entries[0]);
                if (waiting != _waitingSeen)
                {
                    _waitingSeen = waiting;
                    Discover();
                }

                PublishAdvanced();
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

    /// <summary>Publishes for every tracked reader whose writer has published more since the last look.</summary>
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
                if (sent > t.Published && !Publish(t, sent))
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

    /// <summary>Publishes <c>sent - unread</c>; false when the descriptor no longer holds the connection.</summary>
    private bool Publish(Tracked t, ulong sent)
    {
        if (Cookie(t.Fd) != t.Cookie)
        {
            return false;
        }

        int r = _os.BytesToRead(t.Fd, out int unread);
        if (r < 0 || Cookie(t.Fd) != t.Cookie)
        {
            return false;
        }

        ulong consumed = sent - Math.Min(sent, (ulong)unread);
        if (consumed <= t.Published)
        {
            return true;
        }

        var flow = new AccelFlow
        {
            Consumed = (consumed & AccelConsumed.Mask) | AccelConsumed.Reports,
            Sent = sent,
            Tracker = Id,
            Slot = (uint)(_block * AccelTrack.Block + t.Slot + 1),
            Tag = t.Tag,
        };
        if (_kernel.WriteFlow(t.Key, flow) < 0)
        {
            return false; // closed: its record is gone
        }

        t.Published = consumed;
        Interlocked.Increment(ref _publications);
        return true;
    }

    /// <summary>Finds this process's sockets in scope that are in the fast path and not tracked yet, gives each a
    /// slot and publishes for it at once (its writer is waiting near the bound).</summary>
    private void Discover()
    {
        Interlocked.Increment(ref _discoveries);
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries("/proc/self/fd");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        lock (_tracked)
        {
            foreach (string entry in entries)
            {
                if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int fd) || _tracked.ContainsKey(fd))
                {
                    continue;
                }

                if (_kernel.ReadConfig(fd, out AccelSockConfig config) < 0 || config.Owner != _owner || config.Tracker != Id)
                {
                    continue;
                }

                ulong cookie = Cookie(fd);
                if (cookie == 0 || _kernel.ReadState(fd, out AccelSockState state) < 0 || state.Join != AccelSockState.JoinInserted
                    || _kernel.ReadFlow(state.Key, out AccelFlow flow) < 0 || !_freeSlots.TryPop(out int slot))
                {
                    continue;
                }

                uint tag = NextTag();
                Volatile.Write(ref _entries[slot], 0);
                var t = new Tracked(fd, cookie, state.Key, slot, tag);
                _tracked[fd] = t;
                // The slot is announced with the first publication; until then the writer keeps bumping entry 0.
                if (!Publish(t, flow.Sent) || !Announce(t))
                {
                    Release(fd);
                }
            }
        }
    }

    /// <summary>Writes the slot into the reader's record even when there was nothing to publish yet.</summary>
    private bool Announce(Tracked t)
    {
        if (_kernel.ReadFlow(t.Key, out AccelFlow flow) < 0)
        {
            return false;
        }

        if (flow.Tag == t.Tag && flow.Slot != 0)
        {
            return true;
        }

        flow.Consumed = (t.Published & AccelConsumed.Mask) | AccelConsumed.Reports;
        flow.Tracker = Id;
        flow.Slot = (uint)(_block * AccelTrack.Block + t.Slot + 1);
        flow.Tag = t.Tag;
        return _kernel.WriteFlow(t.Key, flow) >= 0;
    }

    /// <summary>Stops tracking connections that closed (their record is gone) or whose descriptor now holds another socket.</summary>
    private void ForgetClosed()
    {
        lock (_tracked)
        {
            foreach (Tracked t in _tracked.Values.ToList())
            {
                if (_kernel.ReadFlow(t.Key, out _) < 0 || Cookie(t.Fd) != t.Cookie)
                {
                    Release(t.Fd);
                }
            }
        }
    }

    private void Release(int fd)
    {
        if (_tracked.Remove(fd, out Tracked? t))
        {
            _freeSlots.Push(t.Slot);
        }
    }

    private uint NextTag()
    {
        _nextTag = _nextTag % 0xffff + 1; // 1..65535: an entry of 0 never matches
        return _nextTag;
    }

    private ulong Cookie(int fd)
    {
        Span<byte> value = stackalloc byte[sizeof(ulong)];
        return _os.GetSockOpt(fd, SolSocket, SoCookie, value, out int length) == 0 && length == sizeof(ulong)
            ? MemoryMarshal.Read<ulong>(value)
            : 0;
    }
}
