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
/// (client) opts it in before the connection exists, and the kernel inserts it under its own 4-tuple at
/// establishment, before either side can write. <see cref="Register"/> then confirms that, or, for a socket
/// that was not opted in, inserts it late after proving from TCP_INFO that it has written nothing.
/// Each socket's first send decides its direction for life: redirected if its peer is in the fast path,
/// TCP otherwise, so bytes are never reordered. Nothing runs in user space per message.
/// </remarks>
public sealed class AccelerationEngine : IDisposable
{
    private readonly ILogger _logger;
    private readonly KernelFastPath? _kernel;
    private readonly PeerRanges? _peers;
    private long _lateRegistered;
    private long _lateRefused;
    private long _lateSkippedRemote;

    private AccelerationEngine(AccelerationStatus status, ILogger logger, KernelFastPath? kernel, PeerRanges? peers, ulong owner)
    {
        Status = status;
        _logger = logger;
        _kernel = kernel;
        _peers = peers;
        Owner = owner;
    }

    /// <summary>Enabled, or disabled with the reason and what to do.</summary>
    public AccelerationStatus Status { get; }

    /// <summary>Sockets registered from now on can be accelerated.</summary>
    public bool IsEnabled => _kernel is not null;

    /// <summary>The random id under which the kernel counts this engine's sockets.</summary>
    internal ulong Owner { get; }

    internal KernelFastPath? Kernel => _kernel;

    /// <summary>Starts the fast path, or returns a disabled engine whose <see cref="Status"/> says why.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public static AccelerationEngine Start(AccelerationEngineOptions? options = null, ILogger? logger = null)
        => Start(options ?? new AccelerationEngineOptions(), logger ?? NullLogger.Instance, LinuxKernel.Instance);

    internal static AccelerationEngine Start(AccelerationEngineOptions options, ILogger logger, IKernel kernel)
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

        return StartOnLinux(options, logger, kernel);
    }

    [SupportedOSPlatform("linux")]
    private static AccelerationEngine StartOnLinux(AccelerationEngineOptions options, ILogger logger, IKernel kernel)
    {
        var bpf = new BpfSyscalls(kernel);
        PinnedObjectStore? store = null;
        try
        {
            SupportReport report = new KernelSupportProbe(bpf).Check(options.PinRoot, options.MountBpffsIfMissing, Capabilities.OfThisProcess());
            if (report.MountedBpffs)
            {
                Log.MountedBpffs(logger, options.PinRoot);
            }

            string cgroup = options.CgroupPath ?? CgroupLocator.OwnCgroupDirectory()
                ?? throw new UnavailableException(Unavailability.CgroupUnavailable,
                    "This process has no cgroup v2 directory (no '0::' line in /proc/self/cgroup or no cgroup2 mount). Mount cgroup2 or set the CgroupPath option. Traffic uses plain TCP.");

            store = PinnedObjectStore.OpenOrCreate(bpf, EmbeddedObjects.Accel, options.PinRoot);
            store.AttachSockOps(AbiNames.SockOpsProgram, cgroup);
            var fastPath = new KernelFastPath(bpf, store);
            var peers = new PeerRanges(options.SameHostPeerRanges, options.IncludeHostAddresses);
            foreach (IPNetwork range in peers.Ranges)
            {
                fastPath.AddPeerRange(range);
            }

            ulong owner = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) | 1;
            Log.Enabled(logger, store.Directory, store.Created ? "created by this process" : "shared with other processes", cgroup);
            var status = new AccelerationStatus(true, AccelerationDisabledReason.None, $"Fast path enabled; objects pinned in {store.Directory}.");
            return new AccelerationEngine(status, logger, fastPath, peers, owner);
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
    public bool PrepareListener(Socket listener) => OptIn(listener);

    /// <summary>Opts a client socket in before <c>Connect</c>: the kernel inserts it at establishment,
    /// before its first byte. Never throws; on failure the socket simply stays on plain TCP.</summary>
    public bool PrepareConnect(Socket socket) => OptIn(socket);

    /// <summary>
    /// Registers a connected TCP socket (IPv4, IPv6 or IPv4-mapped IPv6) before anything is written on it,
    /// and returns the registration, which reports this connection's figures. A socket prepared with
    /// <see cref="PrepareListener"/>/<see cref="PrepareConnect"/> is already in the fast path and costs one
    /// syscall here; any other is inserted late, once TCP_INFO proves it has sent nothing. Never throws for
    /// a socket that cannot be accelerated: the outcome says why and the socket stays on plain TCP.
    /// </summary>
    public SocketRegistration Register(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (_kernel is null)
        {
            return new SocketRegistration(this, socket, RegistrationOutcome.Disabled, Status.Message);
        }

        if (socket.ProtocolType != ProtocolType.Tcp || socket.LocalEndPoint is not IPEndPoint local || socket.RemoteEndPoint is not IPEndPoint remote)
        {
            return Refused(socket, RegistrationOutcome.NotTcp, "Only connected IPv4/IPv6 TCP sockets can be accelerated.", countRefusal: false);
        }

        bool added = false;
        SafeHandle handle = socket.SafeHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            return RegisterFd(socket, fd, local, remote);
        }
        catch (ObjectDisposedException)
        {
            return Refused(socket, RegistrationOutcome.NotEstablished, "The socket is closed.", countRefusal: false);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>Process-wide figures since start, read from the kernel.</summary>
    public AccelerationStatistics GetStatistics()
    {
        if (_kernel is null)
        {
            return default;
        }

        AccelOwnerStats k = _kernel.ReadOwner(Owner);
        return new AccelerationStatistics(
            RegisteredSockets: (long)k.Inserted + Interlocked.Read(ref _lateRegistered),
            RefusedSockets: (long)k.InsertFailed + Interlocked.Read(ref _lateRefused),
            SkippedRemotePeers: (long)k.SkippedRemote + Interlocked.Read(ref _lateSkippedRemote),
            RedirectedMessages: (long)k.RedirectedMessages,
            RedirectedBytes: (long)k.RedirectedBytes,
            TcpMessages: (long)k.TcpMessages,
            TcpBytes: (long)k.TcpBytes,
            DegradedDirections: (long)k.Degraded);
    }

    /// <summary>Closes this process's handles on the pinned objects. The objects stay pinned for the other
    /// services on the host; sockets already in the fast path keep working until they close.</summary>
    public void Dispose()
    {
        if (_kernel is not null)
        {
            _kernel.ForgetOwner(Owner);
            _kernel.Dispose();
        }
    }

    internal ConnectionStatistics? ReadConnection(Socket socket)
    {
        if (_kernel is null)
        {
            return null;
        }

        bool added = false;
        SafeHandle handle = socket.SafeHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            if (_kernel.ReadState((int)handle.DangerousGetHandle(), out AccelSockState st) < 0)
            {
                return null;
            }

            var path = st.Verdict switch
            {
                AccelSockState.VerdictRedirect => DirectionPath.Redirected,
                AccelSockState.VerdictTcp => DirectionPath.Tcp,
                _ => DirectionPath.Undecided,
            };
            string? reason = st.Reason switch
            {
                AccelSockState.ReasonPeerAbsent => "the peer was not in the fast path at this socket's first send",
                AccelSockState.ReasonNotClean => "bytes may have gone through TCP before the socket was registered",
                AccelSockState.ReasonPeerGone => "the peer left the fast path",
                _ => null,
            };
            return new ConnectionStatistics(path, reason, (long)st.RedirectedMessages, (long)st.RedirectedBytes, (long)st.TcpMessages, (long)st.TcpBytes);
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private SocketRegistration RegisterFd(Socket socket, int fd, IPEndPoint local, IPEndPoint remote)
    {
        KernelFastPath k = _kernel!;
        if (k.ReadState(fd, out AccelSockState state) == 0 && (state.Flags & AccelSockState.FlagKernelInserted) != 0)
        {
            return new SocketRegistration(this, socket, RegistrationOutcome.Registered, null);
        }

        // Late registration: the socket was not opted in before the connection existed (or the kernel declined).
        if (!_peers!.MayBeOnHost(local.Address, remote.Address))
        {
            Interlocked.Increment(ref _lateSkippedRemote);
            return Refused(socket, RegistrationOutcome.PeerNotOnHost, $"{remote.Address} is outside loopback, this host's addresses and SameHostPeerRanges.", countRefusal: false);
        }

        int r = SocketFacts.ReadTcpInfo(k.Kernel, fd, out bool established, out bool hasSent);
        if (r < 0 || !established)
        {
            return Refused(socket, RegistrationOutcome.NotEstablished, r < 0 ? $"TCP_INFO failed: {Errno.Describe(-r)}" : "The connection is not established.");
        }

        if (hasSent)
        {
            return Refused(socket, RegistrationOutcome.AlreadyWritten, "Bytes had already gone through TCP; redirecting later ones could reorder them.");
        }

        SocketFacts.ReadNetnsCookie(k.Kernel, fd, out ulong cookie);
        // Not clean until proven after insertion: a send racing with us must decide TCP.
        r = k.WriteConfig(fd, Owner, 0);
        if (r == 0)
        {
            r = k.Insert(SocketFacts.Key(local, remote, cookie), fd);
        }

        if (r < 0)
        {
            var outcome = -r switch
            {
                Errno.E2BIG or Errno.ENOSPC or Errno.ENOMEM => RegistrationOutcome.MapFull,
                Errno.EEXIST => RegistrationOutcome.DuplicateKey,
                Errno.EOPNOTSUPP => RegistrationOutcome.NotEstablished,
                _ => RegistrationOutcome.Failed,
            };
            return Refused(socket, outcome, $"Inserting into the socket map failed: {Errno.Describe(-r)}.");
        }

        // Every send from now on passes the sk_msg program; TCP_INFO says whether one slipped through before.
        r = SocketFacts.ReadTcpInfo(k.Kernel, fd, out _, out hasSent);
        if (r == 0 && !hasSent && k.WriteConfig(fd, Owner, AccelSockConfig.Clean) == 0)
        {
            Interlocked.Increment(ref _lateRegistered);
            return new SocketRegistration(this, socket, RegistrationOutcome.Registered, null);
        }

        // In the map but never redirecting. It must not be deleted: its peer may already have redirected
        // bytes into it, and deleting a socket destroys its queued bytes (KERNEL-FACTS 3).
        Interlocked.Increment(ref _lateRefused);
        return new SocketRegistration(this, socket, RegistrationOutcome.RegisteredTcpOnly, "A send raced with registration; this socket's direction stays on TCP.");
    }

    private SocketRegistration Refused(Socket socket, RegistrationOutcome outcome, string detail, bool countRefusal = true)
    {
        if (countRefusal)
        {
            Interlocked.Increment(ref _lateRefused);
        }

        if (_logger.IsEnabled(LogLevel.Debug))
        {
            Log.NotRegistered(_logger, socket.LocalEndPoint?.ToString() ?? "?", socket.RemoteEndPoint?.ToString() ?? "?", outcome, detail);
        }

        return new SocketRegistration(this, socket, outcome, detail);
    }

    private bool OptIn(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (_kernel is null)
        {
            return false;
        }

        bool added = false;
        SafeHandle handle = socket.SafeHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            int r = _kernel.WriteConfig((int)handle.DangerousGetHandle(), Owner, AccelSockConfig.OptIn);
            if (r < 0)
            {
                Interlocked.Increment(ref _lateRefused);
                Log.OptInFailed(_logger, Errno.Describe(-r));
                return false;
            }

            return true;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
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

    private static AccelerationEngine Disabled(AccelerationDisabledReason reason, string message, ILogger logger)
    {
        if (reason != AccelerationDisabledReason.DisabledByOptions)
        {
            Log.Disabled(logger, reason, message);
        }

        return new AccelerationEngine(new AccelerationStatus(false, reason, message), logger, null, null, 0);
    }
}
