using System.Diagnostics;
using Accel.Testing;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// A service and its client published with native AOT, as services that care about start-up time and memory are: the
/// test peer (Kestrel with the library, and an IHttpClientFactory client with it) is compiled ahead of time from this
/// checkout, without a trim or AOT warning, and the two native processes share the fast path with every byte intact.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class NativeAotTests(KernelFixture fixture, NativeAotTests.PublishedPeer peer, ITestOutputHelper output) : IClassFixture<NativeAotTests.PublishedPeer>
{
    [KernelTheory(Tools = "clang:clang")]
    [InlineData("h1")]
    [InlineData("h2c")]
    public async Task A_service_and_client_published_with_native_AOT_redirect_every_call(string client)
    {
        string executable = await peer.ExecutableAsync(output);
        using Process server = HttpPeerProcess.StartProgram(fixture.Environment, null, [executable], "serve");
        try
        {
            string? portLine = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(portLine?.StartsWith("PORT ", StringComparison.Ordinal) == true, $"server: {portLine} {(server.HasExited ? await server.StandardError.ReadToEndAsync() : "")}");
            string[] ports = portLine!.Split(' ');
            using Process fetch = HttpPeerProcess.StartProgram(fixture.Environment, null, [executable], "fetch",
                "--h1", $"http://127.0.0.1:{ports[1]}", "--h2c", $"http://127.0.0.1:{ports[2]}", "--proto", client);
            using var result = await HttpPeerProcess.CheckFetchAsync(fetch, $"{client}, both native", output);

            // The client's side, through the HttpClient handler's connect callback: its requests went by the redirect.
            var own = result.RootElement.GetProperty("client");
            long redirected = own.GetProperty("redirectedBytes").GetInt64(), tcp = own.GetProperty("tcpBytes").GetInt64();
            output.WriteLine($"client: enabled={own.GetProperty("enabled").GetBoolean()}, {own.GetProperty("registeredSockets").GetInt64()} sockets, {redirected} B redirected, {tcp} B through TCP");
            Assert.True(own.GetProperty("enabled").GetBoolean(), own.GetProperty("reason").ToString());
            Assert.True(redirected > 0 && tcp == 0, $"the client redirected {redirected} B and sent {tcp} B through TCP");
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync();
        }
    }

    /// <summary>Publishes Accel.HttpPeer with native AOT once for the class, into a directory of its own that is removed
    /// afterwards (the checkout's own build output is not touched).</summary>
    public sealed class PublishedPeer : IDisposable
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("accel-aot-").FullName;
        private readonly SemaphoreSlim _gate = new(1, 1);
        private string? _executable;

        public async Task<string> ExecutableAsync(ITestOutputHelper output)
        {
            await _gate.WaitAsync();
            try
            {
                return _executable ??= Publish(output);
            }
            finally
            {
                _gate.Release();
            }
        }

        private string Publish(ITestOutputHelper output)
        {
            var clock = Stopwatch.StartNew();
            string log = DotnetCli.Run(TimeSpan.FromMinutes(8),
                "publish", Path.Combine(Repository.Root, "tests", "Accel.HttpPeer", "Accel.HttpPeer.csproj"),
                "-c", "Release", "--use-current-runtime", "-p:PublishAot=true",
                "--artifacts-path", Path.Combine(_directory, "artifacts"), "-o", Path.Combine(_directory, "out"),
                "-nodeReuse:false", "-p:UseSharedCompilation=false"); // no build servers left running after the test

            // Trim and AOT analysis of the whole program, the library's code included: what a service's own publish would report.
            string[] warnings = log.Split('\n').Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"warning IL\d{4}")).Distinct().ToArray();
            Assert.True(warnings.Length == 0, $"the native AOT publish warned:\n{string.Join('\n', warnings)}");
            string executable = Path.Combine(_directory, "out", "Accel.HttpPeer");
            output.WriteLine($"published with native AOT in {clock.Elapsed.TotalSeconds:F0} s: {new FileInfo(executable).Length >> 20} MiB");
            return executable;
        }

        public void Dispose()
        {
            _gate.Dispose();
            Directory.Delete(_directory, recursive: true);
        }
    }
}
