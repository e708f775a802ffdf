using Accel.Native.Abi;
using Accel.Native.Interop;
using Accel.Native.Pinning;

namespace Accel.Internal;

/// <summary>
/// Where the readers of this process that report their consumption (the library's transports) write it without a
/// syscall: slots of the shared, memory-mapped <c>accel_track</c> array, in blocks this engine holds
/// (<see cref="TrackerBlocks"/>, the same leases as a tracker's).
/// </summary>
/// <remarks>
/// A reader publishes its first report through its <c>accel_consumed</c> entry (one syscall), which also names its slot
/// and the slot's tag; from then on it stores <c>tag &lt;&lt; 48 | total</c> in the slot, and the writer's sk_msg program
/// and pacer read it from there. The program stays correct without it: a slot whose tag differs, or which is marked
/// closed, is ignored, and the entry's own total is a lower bound. When the connection closes, accel_sockops marks the
/// slot closed (the reader's compare-and-swap then fails, so it never overwrites the mark), and the slot is given to
/// another socket once the free ones run out. The kernel writes a slot only while it holds the tag its connection's
/// entry names, so a slot that is freed while an entry still names it (a block whose engine ended before its
/// connections closed, leased again) is safe from that entry's mark: the slot is written with its new tag, the one after
/// its last (<see cref="Renew"/>), before any entry names it.
/// Without a free slot or block, readers report by syscall, as before; a reader without a slot asks again at its next
/// report, which costs a look at each held block's count of marks (the slots are only scanned when it moved) and, at
/// most every <see cref="BlockRetryMs"/>, an attempt to lease another block.
/// The whole array is mapped, also to read the slots of other processes' readers (a writer's pacer).
/// </remarks>
internal sealed unsafe class ReportSlots : IDisposable
{
    /// <summary>How long after finding every block held the engine tries again: blocks free up when other engines end.</summary>
    internal const int BlockRetryMs = 10_000;

    private readonly IKernel _os;
    private readonly string _directory;
    private readonly ulong* _entries;
    private readonly nint _mapping;
    private readonly long _length;
    private readonly object _gate = new();
    private readonly Stack<int> _free = new();
    private readonly List<HeldBlock> _blocks = new();
    private long _blocksRetryAt;
    private bool _disposed;

    private ReportSlots(IKernel os, string directory, nint mapping, long length)
    {
        _os = os;
        _directory = directory;
        _mapping = mapping;
        _length = length;
        _entries = (ulong*)mapping;
    }

    /// <summary>Maps the array; null (with the reason) when it cannot be mapped: readers then report by syscall.</summary>
    public static ReportSlots? Map(KernelFastPath kernel, out string? problem)
    {
        int r = kernel.MapTrack(out nint mapping, out long length);
        if (r < 0)
        {
            problem = $"mapping {AbiNames.Track} failed: {Errno.Describe(-r)}";
            return null;
        }

        problem = null;
        return new ReportSlots(kernel.Bpf.Kernel, kernel.Store.Directory, mapping, length);
    }

    /// <summary>A free slot with a new tag, holding <paramref name="total"/>; null when none is left.</summary>
    public ReportSlot? Take(long total)
    {
        lock (_gate)
        {
            if (_disposed || !TryFree(out int index))
            {
                return null;
            }

            uint tag = Renew(ref _entries[index], total);
            return new ReportSlot(this, index, tag, Value(tag, total));
        }
    }

    /// <summary>The running total the reader in <paramref name="slot"/> (1 + index, as in its accel_consumed entry) with
    /// tag <paramref name="tag"/> wrote there, or null when the slot holds another reader's or a closed connection's.</summary>
    public long? Read(uint slot, uint tag)
    {
        if (slot == 0 || slot > AccelTrack.Block * AccelTrack.Blocks)
        {
            return null;
        }

        ulong value;
        lock (_gate)
        {
            // Under the lock against Dispose (a read of an unmapped array); only a pacer near the bound reads.
            if (_disposed)
            {
                return null;
            }

            value = Volatile.Read(ref _entries[slot - 1]);
        }

        return value >> 48 == (tag & 0xffff) && (value & AccelTrack.Closed) == 0 ? (long)(value & (AccelTrack.Closed - 1)) : null;
    }

    /// <summary>The raw value of slot <paramref name="slot"/> (1 + index), tag and mark included.</summary>
    public ulong Peek(uint slot)
    {
        lock (_gate)
        {
            return _disposed || slot == 0 || slot > AccelTrack.Block * AccelTrack.Blocks ? 0 : Volatile.Read(ref _entries[slot - 1]);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _os.Unmap(_mapping, _length);
            foreach (HeldBlock held in _blocks)
            {
                held.Lease.Dispose();
            }
        }
    }

    /// <summary>Gives the slot <paramref name="entry"/> to its next reader, holding <paramref name="total"/>, and returns
    /// the reader's tag: one past the tag the slot holds (1 to 0xffff, so a used slot's value is never 0). A slot keeps its
    /// tag while it is free, in whichever engine's or tracker's hands, so a connection that still names it (its engine
    /// ended first) can only match again after 65,535 more readers had the slot: the kernel writes only a slot that holds
    /// the tag its connection's entry names. Written before any entry names the slot.</summary>
    internal static uint Renew(ref ulong entry, long total)
    {
        uint tag = (uint)(Volatile.Read(ref entry) >> 48) % 0xffff + 1;
        Volatile.Write(ref entry, Value(tag, total));
        return tag;
    }

    internal static ulong Value(uint tag, long total) => ((ulong)(tag & 0xffff) << 48) | ((ulong)total & (AccelTrack.Closed - 1));

    /// <summary>Stores <paramref name="value"/> in place of <paramref name="expected"/>; false when the slot no longer
    /// holds <paramref name="expected"/> (accel_sockops marked it closed).</summary>
    internal bool TryStore(int index, ulong expected, ulong value)
    {
        lock (_gate)
        {
            // Under the lock only against Dispose (a store into an unmapped array); the store itself is one CAS.
            return !_disposed && Interlocked.CompareExchange(ref _entries[index], value, expected) == expected;
        }
    }

    /// <summary>Frees a slot that no accel_consumed entry names, unless something marked it since
    /// (<paramref name="stored"/>: what its reader stored last).</summary>
    internal void Release(int index, ulong stored)
    {
        lock (_gate)
        {
            // Marked closed like a closed connection's slot, and freed here: no kernel write counted it, so the scan
            // would not look for it.
            if (!_disposed && Interlocked.CompareExchange(ref _entries[index], stored | AccelTrack.Closed, stored) == stored)
            {
                _free.Push(index);
            }
        }
    }

    private bool TryFree(out int index)
    {
        if (_free.TryPop(out index))
        {
            return true;
        }

        // Slots whose connection closed since (marked by accel_sockops) are free again. The kernel counts each mark it
        // writes in the block's change count, after the mark: a block whose count has not moved since its last scan has
        // no new one. The count is read before the scan, so a mark that lands during it is found by the next.
        foreach (HeldBlock held in _blocks)
        {
            ulong marks = Volatile.Read(ref _entries[held.Block * AccelTrack.Block + AccelTrack.Changed]);
            if (marks == held.MarksSeen)
            {
                continue;
            }

            held.MarksSeen = marks;
            for (int i = held.Block * AccelTrack.Block + AccelTrack.FirstSlot; i < (held.Block + 1) * AccelTrack.Block; i++)
            {
                if ((Volatile.Read(ref _entries[i]) & AccelTrack.Closed) != 0)
                {
                    _free.Push(i);
                }
            }
        }

        if (_free.TryPop(out index))
        {
            return true;
        }

        long now = Environment.TickCount64;
        if (now >= _blocksRetryAt && TrackerBlocks.TryTake(_os, _directory, AccelTrack.Blocks) is var (lease, taken))
        {
            _blocks.Add(new HeldBlock(lease, taken, Volatile.Read(ref _entries[taken * AccelTrack.Block + AccelTrack.Changed])));
            // An earlier holder's slots mean nothing now, but keep their tags: the next reader of each gets the one after
            // it, which a connection of that holder that still names the slot does not have, so the kernel does not write
            // over it for that connection (its close mark would otherwise end the reports of the slot's next reader).
            for (int i = (taken + 1) * AccelTrack.Block - 1; i >= taken * AccelTrack.Block + AccelTrack.FirstSlot; i--)
            {
                Volatile.Write(ref _entries[i], Volatile.Read(ref _entries[i]) & ~AccelTrack.SentMask);
                _free.Push(i);
            }

            return _free.TryPop(out index);
        }

        if (now >= _blocksRetryAt)
        {
            _blocksRetryAt = now + BlockRetryMs; // every block is held: readers report by syscall until one frees up
        }

        index = -1;
        return false;
    }

    /// <summary>A block this engine leased, and its change count when its slots were last looked at.</summary>
    private sealed class HeldBlock(KernelFd lease, int block, ulong marksSeen)
    {
        public KernelFd Lease { get; } = lease;

        public int Block { get; } = block;

        public ulong MarksSeen { get; set; } = marksSeen;
    }
}

/// <summary>One reader's slot: it stores its running total there with a compare-and-swap against what it stored
/// last, so that accel_sockops's closed mark is never overwritten.</summary>
internal sealed class ReportSlot(ReportSlots slots, int index, uint tag, ulong stored)
{
    private ulong _stored = stored;

    /// <summary>1 + the slot's index, as its accel_consumed entry names it.</summary>
    public uint Slot => (uint)index + 1;

    public uint Tag => tag;

    /// <summary>Stores <paramref name="total"/>; false once the connection closed (the slot is no longer this reader's).</summary>
    public bool TryWrite(long total)
    {
        ulong value = ReportSlots.Value(tag, total);
        if (!slots.TryStore(index, _stored, value))
        {
            return false;
        }

        _stored = value;
        return true;
    }

    /// <summary>Gives the slot back at once: no accel_consumed entry names it (writing the entry failed).</summary>
    public void Abandon() => slots.Release(index, _stored);
}
