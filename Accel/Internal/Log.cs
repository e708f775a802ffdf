using Microsoft.Extensions.Logging;

namespace Accel.Internal;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Socket acceleration enabled: sockmap fast path pinned in {PinDirectory} ({Origin}), sockets of cgroup {Cgroup} are inserted at connection establishment.")]
    public static partial void Enabled(ILogger logger, string pinDirectory, string origin, string cgroup);

    [LoggerMessage(2, LogLevel.Warning, "Socket acceleration disabled ({Reason}): {Message}")]
    public static partial void Disabled(ILogger logger, AccelerationDisabledReason reason, string message);

    [LoggerMessage(3, LogLevel.Information, "Socket acceleration disabled by configuration (Enabled = false): traffic uses plain TCP.")]
    public static partial void DisabledByOptions(ILogger logger);

    [LoggerMessage(4, LogLevel.Debug, "Socket {Local} -> {Remote} not registered: {Outcome} {Detail}")]
    public static partial void NotRegistered(ILogger logger, string local, string remote, RegistrationOutcome outcome, string? detail);

    [LoggerMessage(5, LogLevel.Warning, "Opting socket into acceleration failed, it uses plain TCP: {Detail}")]
    public static partial void OptInFailed(ILogger logger, string detail);

    [LoggerMessage(7, LogLevel.Information, "The kernel cannot trace readers' consumption of redirected bytes ({Problem}); readers report it instead (SocketRegistration.ReportConsumed, done by the ASP.NET Core transport and handler). A connection whose reader does not report is redirected for its first {BacklogKib} KiB per direction, then uses TCP.")]
    public static partial void ConsumptionNotTracked(ILogger logger, string problem, uint backlogKib);

    [LoggerMessage(6, LogLevel.Information, "Bpffs was not mounted at {PinRoot}; mounted it. Its pins are shared with the processes of this mount namespace only.")]
    public static partial void MountedBpffs(ILogger logger, string pinRoot);

    [LoggerMessage(10, LogLevel.Warning, "Bpffs was not mounted at {PinRoot} in this container; mounted a new one, which no other container sees: calls to services in other containers use plain TCP. Mount the host's /sys/fs/bpf at {PinRoot} (see examples/deploy) to share the fast path across containers.")]
    public static partial void MountedBpffsInContainer(ILogger logger, string pinRoot);

    [LoggerMessage(9, LogLevel.Warning, "The host-wide table of possibly same-host peer addresses is full: {Range} was not added, so connections with peers there use plain TCP. A service's entries leave it when the service stops, or when the next one starts after it was killed, unless another running service published them too (or runs a build of the library from before such claims); narrow SameHostPeerRanges, or clear the table by removing the pin directory while no service runs.")]
    public static partial void PeerRangesFull(ILogger logger, string range);

    [LoggerMessage(8, LogLevel.Information, "Removed what services that are gone left in {PinDirectory}: {Services} service record(s) of processes that ended without stopping, {Addresses} same-host peer address(es) that only they had published, {Links} sock_ops link(s) of removed cgroups.")]
    public static partial void RemovedLeftovers(ILogger logger, int services, int addresses, int links, string pinDirectory);

    [LoggerMessage(11, LogLevel.Information, "Process scope: every TCP socket this process (id {Tgid} on the host) creates from now on is opted into the fast path; reads of sockets the library does not see are reported by its tracker (block {Block}).")]
    public static partial void ProcessScopeEntered(ILogger logger, uint tgid, int block);

    [LoggerMessage(12, LogLevel.Warning, "Process scope is not available ({Problem}): only the sockets of the ASP.NET Core transport and HttpClient handler, and sockets passed to PrepareListener/PrepareConnect, join the fast path.")]
    public static partial void ProcessScopeUnavailable(ILogger logger, string problem);

    [LoggerMessage(13, LogLevel.Warning, "Process scope without a read tracker ({Problem}): a connection whose reader the library does not see is redirected for its first {BacklogKib} KiB per direction, then uses TCP.")]
    public static partial void TrackerUnavailable(ILogger logger, string problem, uint backlogKib);

    [LoggerMessage(14, LogLevel.Error, "The read tracker of process scope stopped: connections whose readers it reported move to TCP once their writers reach the backlog bound.")]
    public static partial void TrackerFailed(ILogger logger, Exception exception);

    [LoggerMessage(15, LogLevel.Information, "Readers report their consumption by syscall ({Problem}): one bpf() call per {StepKib} KiB read on each accelerated connection instead of a store to shared memory. Redirection is unaffected.")]
    public static partial void ReportSlotsUnavailable(ILogger logger, string problem, long stepKib);
}
