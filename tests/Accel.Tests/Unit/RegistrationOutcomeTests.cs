using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Accel.Native.Abi;
using Accel.Native.Interop;
using Accel.Native.Probe;
using Accel.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Accel.Tests.Unit;

/// <summary>
/// What the kernel did with a socket at establishment becomes the registration outcome. A full map, a
/// duplicate key or data before establishment cannot be provoked cheaply on the real kernel (the map holds
/// 65,536 sockets), so a fake kernel answers the one lookup Register makes, for a real connected socket.
/// </summary>
public sealed class RegistrationOutcomeTests
{
    [Theory]
    [InlineData(AccelSockState.JoinInserted, 0, RegistrationOutcome.Registered)]
    [InlineData(AccelSockState.JoinFailed, Errno.E2BIG, RegistrationOutcome.MapFull)]
    [InlineData(AccelSockState.JoinFailed, Errno.EEXIST, RegistrationOutcome.DuplicateKey)]
    [InlineData(AccelSockState.JoinFailed, Errno.EOPNOTSUPP, RegistrationOutcome.NotEstablished)]
    [InlineData(AccelSockState.JoinFailed, Errno.EINVAL, RegistrationOutcome.Failed)]
    [InlineData(AccelSockState.JoinSkippedRemote, 0, RegistrationOutcome.PeerNotOnHost)]
    [InlineData(AccelSockState.JoinSkippedEarly, 0, RegistrationOutcome.AlreadyWritten)]
    [InlineData(AccelSockState.JoinSkippedPlainPeer, 0, RegistrationOutcome.PeerNotAccelerated)]
    public async Task The_kernels_answer_becomes_the_outcome(uint join, int errno, RegistrationOutcome expected)
    {
        using var engine = StartWithFakeKernel(lookup => lookup.Join = join, errno);
        using var pair = await LoopbackPairAsync();
        SocketRegistration registration = engine.Register(pair.Client);
        Assert.Equal(expected, registration.Outcome);
        if (expected != RegistrationOutcome.Registered)
        {
            Assert.NotNull(registration.Detail);
            Assert.Equal(DirectionPath.Tcp, registration.GetStatistics().Path);
        }

        if (errno != 0)
        {
            Assert.Contains(Errno.Describe(errno).Split(' ')[0], registration.Detail);
        }
    }

    [Fact]
    public async Task A_socket_the_kernel_never_saw_was_not_prepared()
    {
        using var engine = StartWithFakeKernel(lookup: null, 0);
        using var pair = await LoopbackPairAsync();
        SocketRegistration registration = engine.Register(pair.Client);
        Assert.Equal(RegistrationOutcome.NotPrepared, registration.Outcome);
        Assert.Contains("PrepareConnect", registration.Detail);
    }

    /// <summary>A kernel on which start succeeds; the state lookup answers with <paramref name="lookup"/> (or ENOENT).</summary>
    private static AccelerationEngine StartWithFakeKernel(Action<StateView>? lookup, int errno)
    {
        const string root = "/fake/bpffs";
        var kernel = new FakeKernel
        {
            // The pin root, the accel directories and the cgroup exist; nothing is pinned yet.
            OnStat = path => path.StartsWith("/fake/cgroup", StringComparison.Ordinal) || path == root
                || Path.GetFileName(path) == "accel" || Path.GetFileName(path).StartsWith("v1-", StringComparison.Ordinal)
                ? (0, new FileFacts(0, 0x41C0, Native.Probe.KernelSupportProbe.BpffsMagic, true, 1))
                : (-Errno.ENOENT, default),
            OnBpf = (cmd, attr) =>
            {
                switch (cmd)
                {
                    case BpfCommand.ObjGet:
                        return -Errno.ENOENT;
                    case BpfCommand.MapLookupElem when MemoryMarshal.Read<uint>(attr) == StateMapFd:
                        if (lookup is null)
                        {
                            return -Errno.ENOENT;
                        }

                        unsafe
                        {
                            ref AccelSockState state = ref *(AccelSockState*)MemoryMarshal.Read<ulong>(attr[16..]);
                            var view = new StateView();
                            lookup(view);
                            state.Join = view.Join;
                            state.InsertError = -errno;
                        }

                        return 0;
                    case BpfCommand.MapCreate:
                        // Hand out fds in the object's map order; remember the state map's.
                        return NextMapFd(attr);
                    default:
                        return 3;
                }
            },
        };
        var engine = AccelerationEngine.Start(new AccelerationEngineOptions { PinRoot = root, CgroupPath = "/fake/cgroup", IncludeHostAddresses = false },
            NullLogger.Instance, kernel);
        Assert.True(engine.IsEnabled, engine.Status.Message);
        return engine;
    }

    private const uint StateMapFd = 424242;

    private static int NextMapFd(Span<byte> attr)
    {
        // map_name at offset 28: the state map gets a recognisable fd.
        string name = System.Text.Encoding.ASCII.GetString(attr.Slice(28, 16)).TrimEnd('\0');
        return name == AbiNames.State ? (int)StateMapFd : 5;
    }

    private static async Task<Pair> LoopbackPairAsync()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        return new Pair(client, await listener.AcceptAsync(), listener);
    }

    public sealed class StateView
    {
        public uint Join { get; set; }
    }

    private sealed record Pair(Socket Client, Socket Server, Socket Listener) : IDisposable
    {
        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
            Listener.Dispose();
        }
    }
}
