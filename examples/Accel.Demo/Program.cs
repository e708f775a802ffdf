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
    "backend" => await Services.RunBackendAsync(args[1..]),
    "frontend" => await Services.RunFrontendAsync(args[1..]),
    "state" => HostState.Print(args.Length > 1 ? args[1] : "/sys/fs/bpf"),
    _ => await DemoRunner.RunAsync(),
};
