using System.Net.Http.Json;

namespace Accel.AspNetCore.Tests;

/// <summary>What the Backend's side of a client's connection did: its first send decides whether it is redirected.</summary>
public static class ServerPath
{
    /// <summary>The server's side of the pooled connection after it has sent one response: Redirected when the client
    /// is in the fast path, Tcp ("the peer was not in the fast path") when it is not.</summary>
    public static async Task<string> OfAsync(HttpClient client)
    {
        await client.GetByteArrayAsync("/bytes/100"); // the server's first send decides its direction
        return (await client.GetFromJsonAsync<System.Text.Json.JsonElement>("/feature")).GetProperty("path").GetString()!;
    }
}
