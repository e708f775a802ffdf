using Accel.Testing;

namespace Accel.Benchmarks.Http;

/// <summary>What every HTTP part runs on: the server process, the one-lookup redirect of its floor apps' connections
/// (<see cref="MinimalRedirect"/>, linked to the test cgroup for as long as the rig lives), every mode's clients, and
/// a <see cref="StallWatch"/> on the two processes.</summary>
internal sealed class HttpRig : IAsyncDisposable
{
    private readonly StallWatch _stalls;

    private HttpRig(BenchServerProcess server, MinimalRedirect floor, ModeClients clients)
    {
        _stalls = new StallWatch(server.Process.Id, clients.ServerGetAsync);
        Server = server;
        Floor = floor;
        Clients = clients;
    }

    public BenchServerProcess Server { get; }

    public MinimalRedirect Floor { get; }

    public ModeClients Clients { get; }

    public static async Task<HttpRig> StartAsync(KernelTestEnvironment env)
    {
        var server = await BenchServerProcess.StartAsync(env);
        var floor = new MinimalRedirect();
        try
        {
            int[] ports = [.. from mode in new[] { "floor", "factory-floor" } let e = server.Endpoints[mode] from url in new[] { e.H1, e.H2 } select new Uri(url).Port];
            floor.AttachToCgroup(env.CgroupPath, ports);
            return new HttpRig(server, floor, new ModeClients(env, server, floor));
        }
        catch
        {
            floor.Dispose();
            await server.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stalls.Dispose();
        Clients.Dispose();
        Floor.Dispose();
        await Server.DisposeAsync();
    }
}
