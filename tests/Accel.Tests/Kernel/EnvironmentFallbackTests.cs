using Accel.Native.Bpf;
using Accel.Native.Loading;
using Accel.Testing;
using Accel.Tests.Infrastructure;

namespace Accel.Tests.Kernel;

/// <summary>
/// Every environment that cannot (or must not) accelerate starts in plain-TCP mode with the right reason,
/// and still serves: the engine is disabled, never thrown.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class EnvironmentFallbackTests(KernelFixture fixture)
{
    [KernelFact(Tools = "capsh:libcap2-bin")]
    public async Task Without_CAP_BPF_and_CAP_NET_ADMIN_it_says_which_to_grant()
    {
        var status = await Peer.StatusAsync(fixture.Environment, ["capsh", "--drop=cap_bpf,cap_net_admin,cap_sys_admin,cap_perfmon", "--", "-c", "exec \"$0\" \"$@\""], []);
        Assert.Equal((false, AccelerationDisabledReason.MissingCapabilities), (status.IsEnabled, status.Reason));
        Assert.Contains("CAP_BPF, CAP_NET_ADMIN", status.Message);
    }

    [KernelFact]
    public void Without_bpffs_it_says_how_to_mount_it()
    {
        string dir = Directory.CreateTempSubdirectory("accel-nobpffs-").FullName;
        try
        {
            var options = fixture.Environment.Options();
            options.PinRoot = dir;
            using var engine = AccelerationEngine.Start(options);
            Assert.Equal(AccelerationDisabledReason.BpffsUnavailable, engine.Status.Reason);
            Assert.Contains($"mount -t bpf bpf {dir}", engine.Status.Message);
        }
        finally
        {
            Directory.Delete(dir);
        }
    }

    [KernelFact]
    public void On_a_read_only_bpffs_it_falls_back_naming_the_directory()
    {
        string dir = Directory.CreateTempSubdirectory("accel-robpffs-").FullName;
        Command.Run("mount", $"-t bpf -o ro bpf {dir}");
        try
        {
            var options = fixture.Environment.Options();
            options.PinRoot = dir;
            using var engine = AccelerationEngine.Start(options);
            Assert.Equal(AccelerationDisabledReason.BpffsUnavailable, engine.Status.Reason);
            Assert.Contains(Path.Combine(dir, "accel"), engine.Status.Message);
        }
        finally
        {
            Command.Run("umount", dir);
            Directory.Delete(dir);
        }
    }

    [KernelFact]
    public void Pins_of_another_owner_are_refused()
    {
        using var bpffs = new PrivateBpffs();
        string accel = Directory.CreateDirectory(Path.Combine(bpffs.Path, "accel")).FullName;
        Command.Run("chown", $"65534:65534 {accel}");
        using var engine = AccelerationEngine.Start(bpffs.Options(fixture.Environment));
        Assert.Equal(AccelerationDisabledReason.UnsafePinnedObjects, engine.Status.Reason);
        Assert.Contains("belongs to uid 65534", engine.Status.Message);
    }

    [KernelFact]
    public void A_pinned_map_of_another_shape_is_refused_and_left_alone()
    {
        using var bpffs = new PrivateBpffs();
        string dir = Path.Combine(bpffs.Path, "accel", EmbeddedObjects.Accel.Abi);
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(Path.GetDirectoryName(dir)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var bpf = new BpfSyscalls(Native.Interop.LinuxKernel.Instance);
        using (var foreign = bpf.CreateMap("foreign", BpfMapType.SockHash, 8, 8, 16, 0))
        {
            bpf.Pin(foreign, Path.Combine(dir, "accel_sockhash"));
        }

        using var engine = AccelerationEngine.Start(bpffs.Options(fixture.Environment));
        Assert.Equal(AccelerationDisabledReason.IncompatiblePinnedObjects, engine.Status.Reason);
        Assert.Contains("key 8 B", engine.Status.Message);
        Assert.True(File.Exists(Path.Combine(dir, "accel_sockhash"))); // not ours to delete
    }

    [KernelFact]
    public async Task A_restarted_service_rejoins_the_pinned_objects()
    {
        var first = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(first.IsEnabled);
        first.Dispose();
        using var second = AccelerationEngine.Start(fixture.Environment.Options());
        Assert.True(second.IsEnabled, second.Status.Message);
        Assert.False(second.Kernel!.Store.Created); // opened what the first left pinned
        using var pair = await SocketPair.ConnectAsync(second);
        await pair.Client.SendAsync(new byte[100]);
        Assert.Equal(100, await pair.Server.ReceiveAsync(new byte[200]));
        Assert.Equal(DirectionPath.Redirected, pair.ClientRegistration.GetStatistics().Path);
    }

    /// <summary>A bpffs of the test's own, removed afterwards.</summary>
    private sealed class PrivateBpffs : IDisposable
    {
        public PrivateBpffs()
        {
            Path = Directory.CreateTempSubdirectory("accel-bpffs-").FullName;
            Command.Run("mount", $"-t bpf bpf {Path}");
        }

        public string Path { get; }

        public AccelerationEngineOptions Options(KernelTestEnvironment environment)
        {
            var options = environment.Options();
            options.PinRoot = Path;
            return options;
        }

        public void Dispose()
        {
            Command.Run("umount", Path);
            Directory.Delete(Path);
        }
    }
}
