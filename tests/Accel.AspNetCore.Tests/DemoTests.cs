using System.Diagnostics;
using Accel.Testing;
using Xunit.Abstractions;

namespace Accel.AspNetCore.Tests;

/// <summary>
/// The README's first command, examples/Accel.Demo, as a new user runs it: it starts a backend and a frontend in
/// processes of their own, each hosting the library on and a twin with it off, drives requests through both modes,
/// prints its table and ends. Every byte the accelerated backend sent went through the fast path, none through TCP,
/// and the twin with the library off redirected nothing.
/// </summary>
[Collection(KernelCollection.Name)]
public sealed class DemoTests(KernelFixture fixture, ITestOutputHelper output)
{
    [KernelFact]
    public async Task The_demo_prints_its_table_with_the_accelerated_backends_bytes_redirected_and_ends()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Accel.Demo.dll"));
        // The demo's services inherit these: this test's private pins and cgroup, not the host's.
        psi.Environment["SidecarlessAcceleration__PinRoot"] = fixture.Environment.PinRoot;
        psi.Environment["SidecarlessAcceleration__CgroupPath"] = fixture.Environment.CgroupPath;
        psi.Environment["SidecarlessAcceleration__MountBpffsIfMissing"] = "false";
        using Process demo = Process.Start(psi)!;
        string printed = await HttpPeerProcess.RunToEndAsync(demo, TimeSpan.FromMinutes(3), output);
        string[][] rows = printed.Split('\n')
            .Where(l => l.StartsWith("| on ", StringComparison.Ordinal) || l.StartsWith("| off ", StringComparison.Ordinal))
            .Select(l => l.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray())
            .ToArray();
        Assert.Equal(8, rows.Length); // four cases, each with the library on and off
        foreach (string[] row in rows)
        {
            // accel | protocol | body | requests | p50 us | p99 us | on / off | redirected | via TCP
            Assert.Equal("0 B", row[8]);
            if (row[0] == "on")
            {
                Assert.NotEqual("0 B", row[7]);
                Assert.True(double.TryParse(row[6], System.Globalization.CultureInfo.InvariantCulture, out double ratio) && ratio > 0, $"on / off: {row[6]}");
            }
            else
            {
                Assert.Equal("0 B", row[7]);
            }
        }

        Assert.DoesNotContain("Acceleration is not running here", printed, StringComparison.Ordinal);
    }
}
