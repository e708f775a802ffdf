using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using Accel.Internal;
using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Interop;
using Accel.Native.Loading;
using Accel.Native.Pinning;
using Accel.Native.Probe;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Accel;

/// <summary>
/// The sockmap fast path of one process. <see cref="Start(AccelerationEngineOptions?, ILogger?)"/> loads (or joins) the host-wide BPF objects,
/// or runs disabled with a reason; it never throws for an environment that cannot accelerate.
/// </summary>
/// <remarks>
/// How a socket gets into the fast path: <see cref="PrepareListener"/> (server) or <see cref="PrepareConnect"/>
/// (client) opts it in before the connection exists, and the kernel inserts it at establishment, before either
/// side can write, under a key that names that very connection as both of its ends see it (the connecting end's
/// address and port and both initial sequence numbers, so a server address rewritten by NAT does not matter).
/// <see cref="Register"/> then reports what the kernel did, in one syscall.
/// User space never inserts sockets: a connection that already exists stays on plain TCP.
/// Each socket's first send decides its direction for life: redirected if its peer is in the fast path,
/// TCP otherwise, so bytes are never reordered. Nothing runs in user space per message.
/// </remarks>
public sealed class AccelerationEngine : IDisposable
{
    private readonly ILogger _logger;
    private readonly KernelFastPath? _kernel;
    private readonly uint _backlogKib;
    private readonly bool _kernelTracksConsumption;
    private readonly ProcessScope? _scope;
    private readonly ReportSlots? _reports;
    private long _optInFailures;
    private long _pacedWrites;
    private long _leftPlainPeers;
    private long _settledWindowBytes;

    private AccelerationEngine(AccelerationStatus status, ILogger logger, KernelFastPath? kernel, ulong owner, uint backlogKib = 0, ProcessScope? scope = null)
    {
        _scope = scope;
        _kernelTracksConsumption = kernel?.Store.TracksConsumption ?? false;
        _backlogKib = backlogKib;
        Status = status;
        _logger = logger;
        _kernel = kernel;
        Owner = owner;
        // Readers that report their consumption write it into shared memory once they have a slot (no syscall per
        // report); where the array cannot be mapped they report by syscall, as without slots.
        if (kernel is not null && !_kernelTracksConsumption)
        {
            _reports = ReportSlots.Map(kernel, out string? problem);
            if (problem is not null)
            {
                Log.ReportSlotsUnavailable(logger, problem, ReportStep >> 10);
            }
        }
    }

    /// <summary>Enabled, or disabled with the reason and what to do.</summary>
    public AccelerationStatus Status { get; }

    /// <summary>Sockets registered from now on can be accelerated.</summary>
    public bool IsEnabled => _kernel is not null;

    /// <summary>The random id under which the kernel counts this engine's sockets.</summary>
    internal ulong Owner { get; }

    internal KernelFastPath? Kernel => _kernel;

    /// <summary>Where this process's reporting readers write their consumption; null where they report by syscall.</summary>
    internal ReportSlots? ReportSlots => _reports;

    /// <summary>Starts the fast path, or returns a disabled engine whose <see cref="Status"/> says why.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public static AccelerationEngine Start(AccelerationEngineOptions? options = null, ILogger? logger = null)
        => Start(options ?? new AccelerationEngineOptions(), logger ?? NullLogger.Instance, LinuxKernel.Instance);

    internal static AccelerationEngine Start(AccelerationEngineOptions options, ILogger logger, IKernel kernel)
        => Start(options, logger, kernel, null);

    /// <summary>With <paramref name="bpfObject"/>: another build of the BPF object (tests of mixed versions).</summary>
    internal static AccelerationEngine Start(AccelerationEngineOptions options, ILogger logger, IKernel kernel, BpfObjectSpec? bpfObject)
    {
        options.Validate();
        if (!options.Enabled)
        {
            Log.DisabledByOptions(logger);
            return Disabled(AccelerationDisabledReason.DisabledByOptions, "Acceleration is turned off by configuration (Enabled = false); traffic uses plain TCP.", logger);
        }

        if (!OperatingSystem.IsLinux())
        {
            return Disabled(AccelerationDisabledReason.NotLinux,
                $"Socket acceleration needs Linux; this is {System.Runtime.InteropServices.RuntimeInformation.OSDescription}. Traffic uses plain TCP.", logger);
        }

        return StartOnLinux(options, logger, kernel, bpfObject ?? EmbeddedObjects.Accel);
    }

    [SupportedOSPlatform("linux")]
    private static AccelerationEngine StartOnLinux(AccelerationEngineOptions options, ILogger logger, IKernel kernel, BpfObjectSpec bpfObject)
    {
        var bpf = new BpfSyscalls(kernel);
        PinnedObjectStore? store = null;
        try
        {
            SupportReport report = new KernelSupportProbe(bpf).Check(options.PinRoot, options.MountBpffsIfMissing, Capabilities.OfThisProcess());
            if (report.MountedBpffs && InContainer())
            {
                Log.MountedBpffsInContainer(logger, options.PinRoot);
            }
            else if (report.MountedBpffs)
            {
                Log.MountedBpffs(logger, options.PinRoot);
            }

            string cgroup = options.CgroupPath ?? CgroupLocator.OwnCgroupDirectory()
                ?? throw new UnavailableException(Unavailability.CgroupUnavailable,
                    "This process has no cgroup v2 directory: no '0::' line in /proc/self/cgroup, or no cgroup2 mount that contains it. In a container on a host that still mounts cgroup v1 (cgroup2 only at /sys/fs/cgroup/unified), mount that directory into the container read-only (examples/deploy/compose.cgroup-v1.yaml); elsewhere mount cgroup2 or set the CgroupPath option. Traffic uses plain TCP.");

            ulong owner = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) | 1;
            store = PinnedObjectStore.OpenOrCreate(bpf, bpfObject, options.PinRoot, owner);
            store.AttachSockOps(AbiNames.SockOpsProgram, cgroup);
            var fastPath = new KernelFastPath(bpf, store);
            var peers = new PeerRanges(options.SameHostPeerRanges, options.IncludeHostAddresses);
            foreach (IPNetwork range in fastPath.PublishPeerRanges(peers.Ranges))
            {
                Log.PeerRangesFull(logger, range.ToString());
            }

            fastPath.Announce(owner, options.ServiceName ?? DefaultServiceName(), Environment.MachineName, Environment.ProcessId);
            if (store.RemovedDetachedLinks > 0 || store.EndedInstancesForgotten > 0)
            {
                Log.RemovedLeftovers(logger, store.EndedInstancesForgotten, store.RemovedPeerEntries, store.RemovedDetachedLinks, store.Directory);
            }

            Log.Enabled(logger, store.Directory, store.Created ? "created by this process" : "shared with other processes", cgroup);
            uint backlogKib = (uint)(options.MaxRedirectedBacklogBytes >> 10);
            string bound = store.TracksConsumption
                ? $"a reader may leave at most {backlogKib} KiB of redirected bytes unread per connection direction before it moves to TCP (the kernel tracks reads)"
                : $"a reader may leave at most {backlogKib} KiB of redirected bytes unread per connection direction before it moves to TCP (readers report their reads: the kernel cannot trace them: {store.ConsumptionTrackingProblem})";
            if (!store.TracksConsumption)
            {
                Log.ConsumptionNotTracked(logger, store.ConsumptionTrackingProblem ?? "unknown", backlogKib);
            }

            ProcessScope? scope = null;
            string scopeText = "";
            if (options.Scope == AccelerationScope.Process)
            {
                try
                {
                    scope = ProcessScope.Enter(fastPath, cgroup, owner, backlogKib, logger);
                    scopeText = scope.Tracker is null
                        ? "; process scope: every TCP socket this process creates is opted in (no read tracker: readers the library does not see get the bound's worth of redirected bytes)"
                        : "; process scope: every TCP socket this process creates is opted in, and the reads of those the library does not see are tracked";
                }
                catch (Exception e)
                {
                    // Scope is an addition: whatever stops it (no probe bind, a full table), prepared sockets still join.
                    Log.ProcessScopeUnavailable(logger, e.Message);
                    scopeText = $"; process scope unavailable ({e.Message}): only prepared sockets join";
                }
            }

            var status = new AccelerationStatus(true, AccelerationDisabledReason.None, $"Fast path enabled; objects pinned in {store.Directory}; {bound}{scopeText}.");
            return new AccelerationEngine(status, logger, fastPath, owner, backlogKib, scope);
        }
        catch (UnavailableException e)
        {
            store?.Dispose();
            return Disabled(ToReason(e.Kind), e.Message, logger);
        }
        catch (BpfException e)
        {
            store?.Dispose();
            return Disabled(AccelerationDisabledReason.LoadFailed, $"{e.Message}. Traffic uses plain TCP.", logger);
        }
        catch (Exception e)
        {
            // Acceleration is an optimisation: nothing that goes wrong here may stop the application.
            store?.Dispose();
            return Disabled(AccelerationDisabledReason.LoadFailed, $"Starting the fast path failed: {e.Message}. Traffic uses plain TCP.", logger);
        }
    }

    /// <summary>Opts a listening (or about-to-listen) socket in: every connection it accepts from now on is
    /// inserted into the fast path by the kernel at establishment. Never throws; on failure the socket
    /// simply stays on plain TCP.</summary>
    /// <param name="listener">The socket, bound or listening.</param>
    /// <param name="reportsConsumption"><c>true</c> when the application's readers call
    /// <see cref="SocketRegistration.ReportConsumed"/> on every accepted connection: a peer writer that paces
    /// (<see cref="SocketRegistration.WaitToSendAsync"/>) then waits for them instead of leaving the fast path.</param>
    public bool PrepareListener(Socket listener, bool reportsConsumption = false) => OptIn(listener, reportsConsumption, window: false);

    /// <summary>
    /// <see cref="PrepareListener"/> or <see cref="PrepareConnect"/>, with windows: each redirect verdict of the socket (of
    /// every socket a listener accepts) covers up to <see cref="AccelSockState.WindowBytes"/> of its next sends, within the
    /// backlog bound, so the sk_msg program runs once per window instead of once per send. The program does not see the
    /// sends inside a window, so this is only for a connection whose writer announces every byte it sends
    /// (<see cref="SocketRegistration.WaitToSendAsync"/>), that is registered with <see cref="RegisterWithWindows"/> or
    /// <see cref="RegisterOnFirstUse"/> with windows, and that calls <see cref="SocketRegistration.SettleWindow"/> at its
    /// writer's end: the library's transports.
    /// </summary>
    internal bool OptInWithWindows(Socket socket, bool reportsConsumption) => OptIn(socket, reportsConsumption, window: true);

    /// <summary>Opts a client socket in before <c>Connect</c>: the kernel inserts it at establishment,
    /// before its first byte. Never throws; on failure the socket simply stays on plain TCP.</summary>
    /// <param name="socket">The socket, not yet connected.</param>
    /// <param name="reportsConsumption"><c>true</c> when the application's reader calls
    /// <see cref="SocketRegistration.ReportConsumed"/> on this connection (see <see cref="PrepareListener"/>).</param>
    public bool PrepareConnect(Socket socket, bool reportsConsumption = false) => OptIn(socket, reportsConsumption, window: false);

    /// <summary>
    /// Returns the registration of a connected TCP socket (IPv4, IPv6 or IPv4-mapped IPv6), which reports
    /// this connection's figures: <see cref="RegistrationOutcome.Registered"/> when the kernel put it into the
    /// fast path at establishment (it was prepared with <see cref="PrepareListener"/>/<see cref="PrepareConnect"/>),
    /// otherwise why not. Costs one syscall. Never throws for a socket that cannot be accelerated: the
    /// socket simply stays on plain TCP.
    /// </summary>
    public SocketRegistration Register(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return new SocketRegistration(this, socket, ReadJoin(socket), ReportEvery);
    }

    /// <summary><see cref="Register"/> of a socket opted in with windows (<see cref="OptInWithWindows"/>): its figures
    /// count its open window from what its writer announced.</summary>
    internal SocketRegistration RegisterWithWindows(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return new SocketRegistration(this, socket, ReadJoin(socket), ReportEvery, window: true);
    }

    /// <summary>The registration of a connected socket that was opted in, read from the kernel only when something needs it
    /// (<see cref="SocketRegistration(AccelerationEngine, Socket, long, bool)"/>); with <paramref name="window"/>, of a socket
    /// opted in with windows (<see cref="OptInWithWindows"/>): the transport's and the HttpClient stream's,
    /// for which a connection that carries one small request costs no syscall of its own.</summary>
    internal SocketRegistration RegisterOnFirstUse(Socket socket, bool window = false)
        => _kernel is null ? Register(socket) : new SocketRegistration(this, socket, ReportEvery, window);

    /// <summary>What the kernel did with the socket at establishment (one syscall).</summary>
    internal JoinResult ReadJoin(Socket socket)
    {
        if (_kernel is null)
        {
            return new JoinResult(RegistrationOutcome.Disabled, Status.Message);
        }

        try
        {
            if (socket.ProtocolType != ProtocolType.Tcp || socket.RemoteEndPoint is not IPEndPoint)
            {
                return Refused(socket, RegistrationOutcome.NotTcp, "Only connected IPv4/IPv6 TCP sockets can be accelerated.");
            }

            return WithFd(socket, fd => ToJoin(socket, _kernel.ReadState(fd, out AccelSockState state), state));
        }
        catch (ObjectDisposedException)
        {
            return Refused(socket, RegistrationOutcome.NotEstablished, "The socket is closed.");
        }
    }

    /// <summary>Process-wide figures since start, read from the kernel.</summary>
    public AccelerationStatistics GetStatistics()
    {
        if (_kernel is null)
        {
            return default;
        }

        AccelerationStatistics kernel = _kernel.ReadOwner(Owner).ToStatistics(Interlocked.Read(ref _optInFailures));
        return kernel with
        {
            RedirectedBytes = kernel.RedirectedBytes + Interlocked.Read(ref _settledWindowBytes),
            PacedWrites = Interlocked.Read(ref _pacedWrites),
            LeftPlainPeers = Interlocked.Read(ref _leftPlainPeers) + (_scope?.Tracker?.LeftFastPath ?? 0),
            TrackedSockets = _scope?.Tracker?.TrackedSockets ?? 0,
            TrackedReports = _scope?.Tracker?.Publications ?? 0,
        };
    }

    /// <summary>Closes this process's handles on the pinned objects. The objects stay pinned for the other
    /// services on the host; sockets already in the fast path keep working until they close.</summary>
    public void Dispose()
    {
        if (_kernel is not null)
        {
            _scope?.Dispose();
            _reports?.Dispose();
            _kernel.ForgetOwner(Owner);
            _kernel.Dispose();
        }
    }

    /// <summary>Publishes a reader's running total; the top bit keeps saying that this reader reports.</summary>
    internal void WriteConsumed(AccelKey key, long totalBytesRead) => _kernel?.WriteConsumed(key, ((ulong)totalBytesRead & AccelConsumed.Mask) | AccelConsumed.Reports);

    /// <summary>What the reader at <paramref name="peerKey"/> has published: whether it is in the fast path at all,
    /// whether it reports, and its running total.</summary>
    internal (bool Present, bool Reports, long Consumed, uint Slot, uint Tag) ReadPeerConsumed(AccelKey peerKey)
    {
        if (_kernel is null || _kernel.ReadFlow(peerKey, out AccelFlow flow) < 0)
        {
            return (false, false, 0, 0, 0);
        }

        long consumed = (long)(flow.Consumed & AccelConsumed.Mask);
        if (flow.Tracker == 0 && flow.Slot != 0)
        {
            // The reader writes its total into its slot now; the entry holds only its first report.
            if (_reports is null)
            {
                return (true, false, consumed, 0, 0); // cannot see the slot: waiting would never end, so do not wait
            }

            consumed = Math.Max(consumed, ReadReportSlot(flow.Slot, flow.Tag) ?? 0);
            return (true, (flow.Consumed & AccelConsumed.Reports) != 0, consumed, flow.Slot, flow.Tag);
        }

        return (true, (flow.Consumed & AccelConsumed.Reports) != 0, consumed, 0, 0);
    }

    /// <summary>What a reader that reports itself wrote into its slot (a memory read, no syscall); null when the slot is
    /// no longer that reader's, or its connection closed.</summary>
    internal long? ReadReportSlot(uint slot, uint tag) => _reports?.Read(slot, tag);

    /// <summary>Gives the reader at <paramref name="key"/> a slot to write its consumption into from now on, and publishes
    /// <paramref name="total"/> with it (one syscall); null when no slot is free or the socket has closed (the reader then
    /// reports by syscall).</summary>
    internal ReportSlot? TryTakeReportSlot(AccelKey key, long total)
    {
        if (_kernel is null || _reports?.Take(total) is not { } slot)
        {
            return null;
        }

        var flow = new AccelFlow { Consumed = ((ulong)total & AccelConsumed.Mask) | AccelConsumed.Reports, Slot = slot.Slot, Tag = slot.Tag };
        if (_kernel.WriteFlow(key, flow) < 0)
        {
            slot.Abandon(); // no entry names it: free it at once
            return null;
        }

        return slot;
    }

    /// <summary>This socket's own state (verdict and figures), or null when it has none or is closed.</summary>
    internal AccelSockState? ReadState(Socket socket)
    {
        if (_kernel is null)
        {
            return null;
        }

        try
        {
            return WithFd(socket, fd => _kernel.ReadState(fd, out AccelSockState st) < 0 ? (AccelSockState?)null : st);
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>Takes a socket out of the map when its first send found no peer and nothing redirected waits in its
    /// queue; see <see cref="SocketRegistration.TryLeaveFastPath"/> and
    /// <see cref="KernelFastPath.TryLeave(int, AccelSockState, AccelKey)"/>. The one read of the socket's state also
    /// settles a registration made on first use.</summary>
    internal bool TryLeave(Socket socket, SocketRegistration registration)
    {
        if (_kernel is null)
        {
            return false;
        }

        try
        {
            if (!WithFd(socket, fd =>
                {
                    int read = _kernel.ReadState(fd, out AccelSockState state);
                    JoinResult join = registration.IsSettled ? registration.Join : registration.Decided(ToJoin(socket, read, state));
                    return read == 0 && join.IsRegistered && _kernel.TryLeave(fd, state, join.Key);
                }))
            {
                return false;
            }

            Interlocked.Increment(ref _leftPlainPeers);
            return true;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    internal void CountPacedWrite() => Interlocked.Increment(ref _pacedWrites);

    /// <summary>Adds what a connection's writer sent in the window still open at its end, which the kernel never counts
    /// (<see cref="SocketRegistration.SettleWindow"/>).</summary>
    internal void CountSettledWindow(long bytes) => Interlocked.Add(ref _settledWindowBytes, bytes);

    /// <summary>For measurements: the kernel times every BPF program run until the result is disposed (null when
    /// disabled).</summary>
    internal IDisposable? EnableProgramStatistics() => _kernel?.Bpf.EnableRunTimeStatistics();

    /// <summary>Total run time and runs of the sk_msg and sock_ops programs, host-wide (every process shares them),
    /// counted while <see cref="EnableProgramStatistics"/> is held.</summary>
    internal ((ulong Ns, ulong Runs) Message, (ulong Ns, ulong Runs) SockOps) ReadProgramStatistics()
        => _kernel is null
            ? default
            : (_kernel.Bpf.ProgramRunStatistics(_kernel.Store.Program(AbiNames.MessageProgram)),
               _kernel.Bpf.ProgramRunStatistics(_kernel.Store.Program(AbiNames.SockOpsProgram)));

    /// <summary>The most one redirect verdict of a socket with windows covers (<see cref="OptInWithWindows"/>).</summary>
    internal const long WindowBytes = AccelSockState.WindowBytes;

    /// <summary>The bound on a direction's redirected-but-unread bytes, in bytes.</summary>
    internal long BacklogBytes => (long)_backlogKib << 10;

    /// <summary>The most the library's own writers (the Kestrel transport, the HttpClient stream) send between two waits
    /// for their reader: half the bound, so that a reader that has caught up always makes room for it, and a large write
    /// goes in paced pieces instead of moving the direction to TCP.</summary>
    internal long PacedPieceBytes => Math.Max(1, BacklogBytes / 2);

    /// <summary>How far a registered reader reads between its reports before it has a slot: none where the kernel tracks
    /// consumption itself.</summary>
    private long ReportEvery => _kernelTracksConsumption ? 0 : ReportStep;

    /// <summary>Readers publish their progress first when it reaches this much (one syscall, which also gives them a slot
    /// in shared memory for every later report: <see cref="SocketRegistration.ReportConsumed"/>); without a slot, each
    /// time it grows by this much, so that what they publish lags what they read by less. A sixteenth of the bound
    /// keeps paced writers close to the bound (256 KiB of the default 4 MiB).</summary>
    internal long ReportStep => Math.Max(1, BacklogBytes / 16);

    /// <summary>Process scope, when this engine entered it.</summary>
    internal ProcessScope? Scope => _scope;

    internal ConnectionStatistics? ReadConnection(Socket socket, long? written = null) => ReadState(socket) is { } st ? Describe(st, written) : null;

    /// <summary>The figures of a socket's state. With <paramref name="written"/>, what its writer announced it sent (a
    /// socket with windows): the bytes beyond what the kernel counted, through TCP or by redirect, went in the open window,
    /// up to its size (more than that: the program is about to run again, and counts them itself).</summary>
    internal static ConnectionStatistics Describe(in AccelSockState st, long? written = null)
    {
        var path = st.Verdict switch
        {
            AccelSockState.VerdictRedirect => DirectionPath.Redirected,
            AccelSockState.VerdictTcp => DirectionPath.Tcp,
            _ => DirectionPath.Undecided,
        };
        string? reason = st.Reason switch
        {
            AccelSockState.ReasonPeerAbsent => "the peer was not in the fast path at this socket's first send",
            AccelSockState.ReasonNotInserted => "the socket was put into the map by someone other than this library",
            AccelSockState.ReasonPeerGone => "the peer closed, and so left the fast path",
            AccelSockState.ReasonBacklog => "the reader left more redirected bytes unread than MaxRedirectedBacklogBytes allows",
            _ => null,
        };
        long redirected = (long)st.RedirectedBytes + (written is long w ? WindowUsed(st, w) : 0);
        return new ConnectionStatistics(path, reason, (long)st.RedirectedMessages, redirected, (long)st.TcpMessages, (long)st.TcpBytes)
        {
            LeftFastPathAt = st.LeftNs == 0 ? null : MonotonicToWallClock(st.LeftNs),
        };
    }

    /// <summary>How much of the socket's open window its writer has used, by what it announced it sent
    /// (<paramref name="written"/>): what the kernel has not counted, up to the window's size.</summary>
    internal static long WindowUsed(in AccelSockState st, long written)
        => Math.Clamp(written - (long)st.TcpBytes - (long)st.RedirectedBytes, 0, st.Window);

    /// <summary>bpf_ktime_get_ns and Stopwatch both read CLOCK_MONOTONIC on Linux.</summary>
    private static DateTimeOffset MonotonicToWallClock(ulong monotonicNs)
    {
        long nowNs = (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));
        return DateTimeOffset.UtcNow - TimeSpan.FromTicks((nowNs - (long)monotonicNs) / 100);
    }

    /// <summary>Runs <paramref name="use"/> with the socket's descriptor, which cannot be closed meanwhile.</summary>
    internal static T WithFd<T>(Socket socket, Func<int, T> use)
    {
        bool added = false;
        SafeHandle handle = socket.SafeHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            return use((int)handle.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>What a read of the socket's accel_state entry (<paramref name="read"/>: 0 or -errno) says the kernel did with
    /// it at establishment.</summary>
    private JoinResult ToJoin(Socket socket, int read, in AccelSockState state)
    {
        if (read < 0)
        {
            return Refused(socket, RegistrationOutcome.NotPrepared,
                "The socket was not opted in before its connection was established; call PrepareConnect (client) or PrepareListener (server) first.");
        }

        return state.Join switch
        {
            AccelSockState.JoinInserted => new JoinResult(RegistrationOutcome.Registered, null, state.Key),
            AccelSockState.JoinSkippedRemote => Refused(socket, RegistrationOutcome.PeerNotOnHost,
                $"{EndPointText(socket, local: false)} is outside loopback, this host's addresses and SameHostPeerRanges."),
            AccelSockState.JoinSkippedPlainPeer => Refused(socket, RegistrationOutcome.PeerNotAccelerated,
                $"The peer {EndPointText(socket, local: false)} is not in the fast path (its process does not use the library, or did not opt the socket in)."),
            AccelSockState.JoinSkippedEarly => Refused(socket, RegistrationOutcome.AlreadyWritten,
                "The socket sent data before its connection was established (TCP Fast Open)."),
            AccelSockState.JoinFailed => Refused(socket, -state.InsertError switch
            {
                Errno.E2BIG or Errno.ENOSPC or Errno.ENOMEM => RegistrationOutcome.MapFull,
                Errno.EEXIST => RegistrationOutcome.DuplicateKey,
                Errno.EOPNOTSUPP => RegistrationOutcome.NotEstablished,
                _ => RegistrationOutcome.Failed,
            }, $"The kernel could not insert the socket into the socket map: {Errno.Describe(-state.InsertError)}."),
            _ => Refused(socket, RegistrationOutcome.NotPrepared, "The socket is not in the fast path."),
        };
    }

    private JoinResult Refused(Socket socket, RegistrationOutcome outcome, string detail)
    {
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            Log.NotRegistered(_logger, EndPointText(socket, local: true), EndPointText(socket, local: false), outcome, detail);
        }

        return new JoinResult(outcome, detail);
    }

    /// <summary>An end's address for a log line; a socket closed meanwhile has none any more.</summary>
    private static string EndPointText(Socket socket, bool local)
    {
        try
        {
            return (local ? socket.LocalEndPoint : socket.RemoteEndPoint)?.ToString() ?? "?";
        }
        catch (ObjectDisposedException)
        {
            return "?";
        }
    }

    private bool OptIn(Socket socket, bool reportsConsumption, bool window)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (_kernel is null)
        {
            return false;
        }

        int r;
        try
        {
            // Where the kernel traces reads itself, every reader counts as reporting.
            uint flags = AccelSockConfig.OptIn | (reportsConsumption || _kernelTracksConsumption ? AccelSockConfig.Reports : 0)
                | (window ? AccelSockConfig.Window : 0);
            r = WithFd(socket, fd => _kernel.WriteConfig(fd, Owner, flags, _backlogKib));
        }
        catch (ObjectDisposedException)
        {
            r = -Errno.EBADF;
        }

        if (r < 0)
        {
            Interlocked.Increment(ref _optInFailures);
            Log.OptInFailed(_logger, Errno.Describe(-r));
            return false;
        }

        return true;
    }

    internal static AccelerationDisabledReason ToReason(Unavailability kind) => kind switch
    {
        Unavailability.NotLinux => AccelerationDisabledReason.NotLinux,
        Unavailability.KernelUnsupported => AccelerationDisabledReason.KernelUnsupported,
        Unavailability.MissingCapabilities => AccelerationDisabledReason.MissingCapabilities,
        Unavailability.BpffsUnavailable => AccelerationDisabledReason.BpffsUnavailable,
        Unavailability.UnsafePinnedObjects => AccelerationDisabledReason.UnsafePinnedObjects,
        Unavailability.IncompatiblePinnedObjects => AccelerationDisabledReason.IncompatiblePinnedObjects,
        Unavailability.CgroupUnavailable => AccelerationDisabledReason.CgroupUnavailable,
        _ => AccelerationDisabledReason.LoadFailed,
    };

    /// <summary>The markers container engines leave: the .NET images' variable, Docker's and Podman's files.</summary>
    private static bool InContainer() =>
        Environment.GetEnvironmentVariable("DOTNET_RUNNING_IN_CONTAINER") == "true"
        || File.Exists("/.dockerenv") || File.Exists("/run/.containerenv");

    /// <summary>"dotnet App.dll" would otherwise be "dotnet" in the host-wide view, as in most containers.</summary>
    private static string DefaultServiceName() =>
        System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name ?? System.Diagnostics.Process.GetCurrentProcess().ProcessName;

    private static AccelerationEngine Disabled(AccelerationDisabledReason reason, string message, ILogger logger)
    {
        if (reason != AccelerationDisabledReason.DisabledByOptions)
        {
            Log.Disabled(logger, reason, message);
        }

        return new AccelerationEngine(new AccelerationStatus(false, reason, message), logger, null, 0);
    }
}
