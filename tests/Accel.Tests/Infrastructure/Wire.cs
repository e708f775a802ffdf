using System.Net.Sockets;
using Accel.Native.Abi;

namespace Accel.Tests.Infrastructure;

/// <summary>Small real-kernel checks shared by the tests.</summary>
public static class Wire
{
    /// <summary>Sends <paramref name="size"/> patterned bytes each way over a connected pair and checks them.</summary>
    public static async Task ExchangeBothWaysAsync(Socket a, Socket b, int size = 3000)
    {
        byte[] data = Enumerable.Range(0, size).Select(i => (byte)(i * 7)).ToArray();
        foreach (var (from, to) in new[] { (a, b), (b, a) })
        {
            await from.SendAsync(data);
            byte[] got = new byte[data.Length];
            int n = 0;
            while (n < got.Length)
            {
                n += await to.ReceiveAsync(got.AsMemory(n));
            }

            Assert.Equal(data, got);
        }
    }

    /// <summary>The sockets in the engine's sockhash now, counted through the map's keys.</summary>
    public static unsafe int SockhashEntries(AccelerationEngine engine)
        => engine.Kernel!.Bpf.Keys(engine.Kernel.Store.Map(AbiNames.SockHash), sizeof(AccelKey)).Count();
}
