// The Accel demo: two services on this machine, a frontend that calls a backend through IHttpClientFactory
// (HTTP/1.1 and h2c), each with the one line that accelerates it and a /healthz that shows the bypass counts.
//
//   dotnet run --project examples/Accel.Demo -c Release            run both services with acceleration on and
//                                                                  off, drive traffic, print a table
//   dotnet run --project examples/Accel.Demo -- backend  --urls ...  one service, as a deployment runs it
//   dotnet run --project examples/Accel.Demo -- frontend --urls ...
//   dotnet run --project examples/Accel.Demo -- state [pin root]     the host-wide view: services, sockets, bytes
using Accel.Demo;

return args.FirstOrDefault() switch
{
    null => await DemoRunner.RunAsync(),
    "backend" => await Services.RunBackendAsync(args[1..]),
    "frontend" => await Services.RunFrontendAsync(args[1..]),
    "state" => HostState.Print(args.Length > 1 ? args[1] : "/sys/fs/bpf"),
    // Not the demo: the demo starts this program again as its services, so an unknown role must never start it.
    var unknown => Usage(unknown),
};

static int Usage(string unknown)
{
    Console.Error.WriteLine($"Unknown command '{unknown}'. Run without arguments for the demo, or with backend, frontend or state (see Program.cs).");
    return 2;
}
