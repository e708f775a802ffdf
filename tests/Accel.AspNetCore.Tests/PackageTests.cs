using System.Diagnostics;
using System.Net.Http.Json;
using Accel.Testing;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// What a team adopting the library does: the three packages packed into a local feed, a new web app (dotnet new web,
/// outside this repository) that references Accel.AspNetCore by package and adds the one line, and its traffic (the
/// app calling itself through IHttpClientFactory) accelerated.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class PackageTests(KernelFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan Step = TimeSpan.FromMinutes(5);

    [KernelFact]
    public async Task A_new_web_app_that_references_the_package_is_accelerated()
    {
        string work = Path.Combine(Path.GetTempPath(), $"accel-package-{Guid.NewGuid():N}");
        string feed = Path.Combine(work, "feed"), app = Path.Combine(work, "app");
        Directory.CreateDirectory(feed);
        try
        {
            foreach (string project in new[] { "Accel.Native", "Accel", "Accel.AspNetCore" })
            {
                DotnetCli.Run(Step, "pack", Path.Combine(Repository.Root, project, $"{project}.csproj"), "-c", "Release", "-o", feed, "-p:Version=0.0.1-test");
            }

            Assert.Contains("Accel.AspNetCore.0.0.1-test.snupkg", Directory.GetFiles(feed).Select(Path.GetFileName));
            DotnetCli.Run(Step, "new", "web", "-o", app, "-n", "FreshApp", "--no-restore");
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="local" value="{feed}" />
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
                  </packageSources>
                </configuration>
                """);
            string csproj = Path.Combine(app, "FreshApp.csproj");
            File.WriteAllText(csproj, File.ReadAllText(csproj).Replace("</Project>", """
                  <ItemGroup>
                    <PackageReference Include="Accel.AspNetCore" Version="0.0.1-test" />
                  </ItemGroup>
                </Project>
                """, StringComparison.Ordinal));
            File.WriteAllText(Path.Combine(app, "Program.cs"), """
                using Microsoft.Extensions.Diagnostics.HealthChecks;

                var builder = WebApplication.CreateBuilder(args);
                builder.Services.AddSidecarlessAcceleration();
                builder.Services.AddHttpClient("self", c => c.BaseAddress = new Uri(builder.Configuration["SelfUrl"]!));
                var app = builder.Build();
                app.MapGet("/data", () => new string('x', 10_000));
                app.MapGet("/call", async (IHttpClientFactory clients) =>
                {
                    long bytes = 0;
                    for (int i = 0; i < 20; i++)
                    {
                        bytes += (await clients.CreateClient("self").GetStringAsync("/data")).Length;
                    }

                    return bytes;
                });
                app.MapGet("/stats", async (HealthCheckService health) => (await health.CheckHealthAsync()).Entries["sidecarless-acceleration"].Data);
                app.Run();
                """);
            DotnetCli.Run(Step, "build", app, "-c", "Release");

            int port = LoopbackPort.Free();
            var psi = new ProcessStartInfo("dotnet", [Path.Combine(app, "bin", "Release", "net10.0", "FreshApp.dll"), "--urls", $"http://127.0.0.1:{port}", "--SelfUrl", $"http://127.0.0.1:{port}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.Environment["SidecarlessAcceleration__PinRoot"] = fixture.Environment.PinRoot;
            psi.Environment["SidecarlessAcceleration__CgroupPath"] = fixture.Environment.CgroupPath;
            psi.Environment["SidecarlessAcceleration__MountBpffsIfMissing"] = "false";
            using Process service = Process.Start(psi)!;
            _ = service.StandardOutput.ReadToEndAsync();
            _ = service.StandardError.ReadToEndAsync();
            try
            {
                using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
                for (int i = 0; ; i++)
                {
                    try
                    {
                        Assert.Equal("200000", await http.GetStringAsync("/call"));
                        break;
                    }
                    catch (HttpRequestException) when (i < 200 && !service.HasExited)
                    {
                        await Task.Delay(100);
                    }
                }

                var stats = await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/stats");
                output.WriteLine($"the fresh app's acceleration: {stats}");
                Assert.True(stats.GetProperty("enabled").GetBoolean(), $"{stats}");
                // Its 20 self-calls, both ways, less the last window of each end of the pooled connection, still open, which
                // the process counts when the connection ends.
                Assert.True(stats.GetProperty("redirectedBytes").GetInt64() > 200_000 - 2 * AccelerationEngine.WindowBytes, $"{stats}");
            }
            finally
            {
                service.Kill();
                await service.WaitForExitAsync();
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
