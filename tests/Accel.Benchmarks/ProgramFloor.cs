using Accel.Native.Bpf;
using Accel.Native.Interop;

namespace Accel.Benchmarks;

/// <summary>
/// What the kernel's timing of a BPF program costs by itself on this machine: with statistics on, every run is
/// bracketed by two clock reads and an update of the program's counters, and all of it lands in run_time_ns. An sk_msg
/// program that returns SK_PASS at once, attached to a sockhash of its own holding a plain loopback pair, measures that
/// floor; the sk_msg program's own work is its measured cost minus this. Beside it, timed the same way, the least any
/// redirecting program can cost here: <see cref="MinimalRedirect"/>'s single lookup and redirect, run for every send.
/// </summary>
internal static class ProgramFloor
{
    // r0 = SK_PASS (1); exit.
    private static readonly byte[] PassAtOnce = [0xb7, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];

    /// <summary>ns per message of the empty program and of the minimal redirect, each over
    /// <paramref name="roundTrips"/> 64 B round trips (two messages each) on a pair of its own.</summary>
    public static (double PassNs, double RedirectNs) Measure(AccelerationEngine engine, int roundTrips)
        => (MeasurePass(engine, roundTrips), MeasureRedirect(engine, roundTrips));

    private static double MeasureRedirect(AccelerationEngine engine, int roundTrips)
    {
        using var minimal = new MinimalRedirect(windowBytes: 0);
        using BenchPair pair = minimal.CreatePair(engine);
        double ns = minimal.Measure(pair, roundTrips);
        MinimalRedirect.EnsureRedirected(pair, pair.ReadA + pair.ReadB);
        return ns;
    }

    private static double MeasurePass(AccelerationEngine engine, int roundTrips)
    {
        var bpf = new BpfSyscalls(LinuxKernel.Instance);
        using KernelFd map = bpf.CreateMap("accel_floor", BpfMapType.SockHash, sizeof(int), sizeof(int), 2, 0);
        using KernelFd program = bpf.LoadProgram("accel_floor", BpfProgramType.SkMsg, BpfAttachType.SkMsgVerdict, PassAtOnce, "Dual MIT/GPL");
        int r = bpf.TryAttach(program, map.Value, BpfAttachType.SkMsgVerdict, 0);
        if (r < 0)
        {
            throw new BpfException("BPF_PROG_ATTACH (empty sk_msg program)", -r);
        }

        using var pair = BenchPair.Create(Transport.Tcp, engine);
        for (int key = 0; key < 2; key++)
        {
            int fd = (int)(key == 0 ? pair.A : pair.B).Handle;
            r = bpf.TryUpdate(map, BitConverter.GetBytes(key), BitConverter.GetBytes(fd), BpfFlags.Any);
            if (r < 0)
            {
                throw new BpfException("BPF_MAP_UPDATE_ELEM (a socket into the floor's sockhash)", -r);
            }
        }

        return NsPerMessage(bpf, program, pair, roundTrips);
    }

    /// <summary>ns per message of <paramref name="program"/>, attached to <paramref name="pair"/>'s sockhash, over
    /// <paramref name="roundTrips"/> 64 B round trips after 1,000 that warm up, from the kernel's BPF statistics.</summary>
    internal static double NsPerMessage(BpfSyscalls bpf, KernelFd program, BenchPair pair, int roundTrips)
    {
        RawSocketBenchmarks.PingPong(pair, 64, 1000);
        using (bpf.EnableRunTimeStatistics())
        {
            var before = bpf.ProgramRunStatistics(program);
            RawSocketBenchmarks.PingPong(pair, 64, roundTrips);
            var after = bpf.ProgramRunStatistics(program);
            long messages = (long)(after.RunCount - before.RunCount);
            return (after.RunTimeNs - before.RunTimeNs) / (double)Math.Max(1, messages);
        }
    }
}
