using System.Net;
using System.Net.Sockets;
using Accel.Native.Abi;
using Accel.Native.Bpf;
using Accel.Native.Probe;
using Microsoft.Extensions.Logging;

namespace Accel.Internal;

/// <summary>
/// <see cref="AccelerationScope.Process"/>: the kernel opts in every TCP socket this process creates, and a tracker
/// reports the reads of those the library does not see. Entered at engine start, left at its end (or, for a process
/// that is killed, by the next engine that sweeps the pin directory: a scope left behind would opt in the sockets
/// of whichever process gets the id next).
/// </summary>
internal sealed class ProcessScope : IDisposable
{
    private readonly KernelFastPath _kernel;

    private ProcessScope(KernelFastPath kernel, uint tgid, ConsumptionTracker? tracker)
    {
        _kernel = kernel;
        Tgid = tgid;
        Tracker = tracker;
    }

    /// <summary>This process's id as the kernel's programs see it (the initial pid namespace's).</summary>
    public uint Tgid { get; }

    public ConsumptionTracker? Tracker { get; }

    /// <summary>Attaches the scope programs to <paramref name="cgroup"/>, learns this process's host id and puts it
    /// in scope. Throws <see cref="UnavailableException"/> or <see cref="BpfException"/> when that cannot be done.</summary>
    public static ProcessScope Enter(KernelFastPath kernel, string cgroup, ulong owner, uint backlogKib, ILogger logger)
    {
        kernel.Store.AttachToCgroup(AbiNames.SockCreateProgram, BpfAttachType.CgroupInetSockCreate, cgroup, "sock_create");
        kernel.Store.AttachToCgroup(AbiNames.WhoAmIProgram, BpfAttachType.CgroupInet4PostBind, cgroup, "post_bind4");
        uint tgid = WhoAmI(kernel);
        if (tgid == 0)
        {
            throw new UnavailableException(Unavailability.CgroupUnavailable,
                $"the programs attached to {cgroup} do not run for this process: it is not in that cgroup or below it; leave CgroupPath unset or set it to this process's cgroup");
        }

        ConsumptionTracker? tracker = ConsumptionTracker.Start(kernel, owner, logger, out string? problem);
        var config = new AccelSockConfig
        {
            Owner = owner,
            Flags = AccelSockConfig.OptIn | (tracker is null ? 0 : AccelSockConfig.Reports),
            BacklogKib = backlogKib,
            Tracker = tracker?.Id ?? 0,
        };
        int r = kernel.WriteScope(tgid, config);
        if (r < 0)
        {
            tracker?.Dispose();
            throw new BpfException($"BPF_MAP_UPDATE_ELEM {AbiNames.Scope} (the host's table of processes in scope may be full)", -r);
        }

        if (tracker is null)
        {
            Log.TrackerUnavailable(logger, problem ?? "unknown", backlogKib);
        }

        Log.ProcessScopeEntered(logger, tgid, tracker is null ? -1 : (int)tracker.Id - 1);
        return new ProcessScope(kernel, tgid, tracker);
    }

    public void Dispose()
    {
        // Out of scope first: no new socket gets this engine's config (and its tracker id) from here on.
        _kernel.DeleteScope(Tgid);
        Tracker?.Dispose();
    }

    /// <summary>Binds a probe socket that asks accel_whoami for this process's host id; 0 when the program did not
    /// run (this process is outside the cgroup it is attached to).</summary>
    private static uint WhoAmI(KernelFastPath kernel)
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        return AccelerationEngine.WithFd(probe, fd =>
        {
            int r = kernel.WriteConfig(fd, owner: 0, AccelSockConfig.WhoAmI, 0);
            if (r < 0)
            {
                throw new BpfException($"BPF_MAP_UPDATE_ELEM {AbiNames.Config} (process id probe)", -r);
            }

            probe.Bind(new IPEndPoint(IPAddress.Any, 0));
            return kernel.ReadConfig(fd, out AccelSockConfig config) < 0 ? 0 : config.Tgid;
        });
    }
}
