using System.Net;
using Accel.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// Large uploads and downloads over TLS, HTTP/1.1 and HTTP/2, through the library at both ends. SslStream writes records
/// of at most 16 KiB, each a write of its own to the HttpClient stream (which gathers a burst of them, WriteBehind) and to
/// Kestrel's transport, and reads them back a record at a time: a write and read pattern the plain-text tests do not
/// make. Every byte arrives (checked against the pattern on the receiving side), both ways, through the fast path and
/// none through TCP.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class TlsTransferTests(KernelFixture fixture, ITestOutputHelper output)
{
    private const long Size = 32L << 20; // eight times the default bound

    [KernelTheory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task Uploads_and_downloads_over_TLS_arrive_whole_through_the_fast_path(string version)
    {
        await using LoopbackApp app = await LoopbackApp.StartAsync(
            fixture,
            k =>
            {
                k.Limits.MaxRequestBodySize = null; // Kestrel's 30 MB limit would answer 413 and close
                k.Listen(IPAddress.Loopback, 0, o =>
                {
                    o.Protocols = HttpProtocols.Http1AndHttp2;
                    o.UseHttps(Backend.SelfSigned());
                });
            },
            TransferEndpoints.Map);
        using HttpClient client = app.Client(version, h => h.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true); // the test's own certificate
        client.Timeout = TimeSpan.FromMinutes(1);
        AccelerationStatistics before = app.Engine.GetStatistics();
        using (HttpResponseMessage uploaded = await client.PostAsync($"/verify/{Size}", new Pattern.Content(Size)))
        {
            Assert.True(uploaded.IsSuccessStatusCode, await uploaded.Content.ReadAsStringAsync());
            Assert.Equal(Version.Parse(version), uploaded.Version);
        }

        using (HttpResponseMessage downloaded = await client.GetAsync($"/slow/{Size}", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Null(await Pattern.VerifyAsync(await downloaded.Content.ReadAsStreamAsync(), Size, default));
        }

        app.AssertThroughFastPath(before, 2 * Size - 2L * AccelerationEngine.WindowBytes, output);
    }
}
