using System.Security.Cryptography;
using Accel.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Accel.AspNetCore.Tests;

/// <summary>The endpoints and requests of the tests that keep many downloads and uploads in flight at once
/// (<see cref="GracefulShutdownTests"/>, <see cref="CancellationStormTests"/>): every byte checked either way.</summary>
internal static class TransferEndpoints
{
    /// <summary>GET /slow/{n}: n bytes of <see cref="Pattern"/> in 16 KiB writes, a millisecond's pause every 64 KiB, so
    /// that a download stays in flight for a while. POST /hash: the SHA-256 of the body, as the server read it. POST
    /// /verify/{n}: 200 when the body is exactly n bytes of <see cref="Pattern"/>, else 400 with what was wrong.</summary>
    public static void Map(WebApplication web)
    {
        web.MapGet("/slow/{n:int}", async (int n, HttpContext context) =>
        {
            context.Response.ContentLength = n;
            await Pattern.WriteAsync(new PausingStream(context.Response.Body), n, context.RequestAborted);
        });
        web.MapPost("/hash", async (HttpContext context) =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[64 * 1024];
            int n;
            while ((n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                sha.AppendData(buffer, 0, n);
            }

            return Results.Text(Convert.ToHexString(sha.GetHashAndReset()));
        });
        web.MapPost("/verify/{n:long}", async (long n, HttpContext context) =>
            await Pattern.VerifyAsync(context.Request.Body, n, context.RequestAborted) is { } wrong ? Results.BadRequest(wrong) : Results.Ok());
    }

    /// <summary>A download of 64 KiB to 2 MiB or an upload of 1 B to 3 MiB, the kind and size at random; whether what came
    /// back is right.</summary>
    public static async Task<bool> RandomRequestAsync(HttpClient client, Random random, CancellationToken cancellationToken)
    {
        if (random.Next(2) == 0)
        {
            int size = random.Next(64 * 1024, 2 << 20);
            using HttpResponseMessage response = await client.GetAsync($"/slow/{size}", HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            response.EnsureSuccessStatusCode();
            await using Stream body = await response.Content.ReadAsStreamAsync(cancellationToken);
            return await Pattern.VerifyAsync(body, size, cancellationToken) is null;
        }

        byte[] upload = new byte[random.Next(1, 3 << 20)];
        random.NextBytes(upload);
        using HttpResponseMessage posted = await client.PostAsync("/hash", new ByteArrayContent(upload), cancellationToken);
        posted.EnsureSuccessStatusCode();
        return await posted.Content.ReadAsStringAsync(cancellationToken) == Hash(upload);
    }

    /// <summary>What POST /hash answers for <paramref name="body"/>.</summary>
    public static string Hash(byte[] body) => Convert.ToHexString(SHA256.HashData(body));

    /// <summary>Pauses a millisecond before every fourth write (Pattern writes 16 KiB at a time).</summary>
    private sealed class PausingStream(Stream inner) : PassThroughStream(inner)
    {
        private int _writes;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_writes++ % 4 == 3)
            {
                await Task.Delay(1, cancellationToken);
            }

            await base.WriteAsync(buffer, cancellationToken);
        }
    }
}
