using System.Net;
using System.Net.Sockets;

namespace Accel.AspNetCore.Internal;

/// <summary>
/// <see cref="SocketsHttpHandler.ConnectCallback"/> for every IHttpClientFactory client: connects like the
/// default handler (every address of the host, in the resolver's order, IPv6 and IPv4), but opts each socket
/// into the fast path before connecting, so the kernel inserts it before the first request byte.
/// </summary>
internal sealed class AcceleratedConnector(AccelerationEngineProvider engine)
{
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        AccelerationEngine accel = engine.Engine;
        DnsEndPoint target = context.DnsEndPoint;
        IPAddress[] addresses = IPAddress.TryParse(target.Host, out IPAddress? literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(target.Host, cancellationToken).ConfigureAwait(false);

        Exception? lastError = null;
        foreach (IPAddress address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                // AcceleratedNetworkStream reports its reads, announces every byte it sends and settles its last window.
                bool prepared = accel.OptInWithWindows(socket, reportsConsumption: true);
                await socket.ConnectAsync(new IPEndPoint(address, target.Port), cancellationToken).ConfigureAwait(false);

                // What the kernel did is read with the check after the first write, not here: one syscall per connection
                // instead of two. A socket that did not join (a remote server) passes through from then on.
                return prepared
                    ? new AcceleratedNetworkStream(socket, accel.RegisterOnFirstUse(socket, window: true), accel.PacedPieceBytes)
                    : new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                lastError = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw lastError ?? new SocketException((int)SocketError.HostNotFound);
    }

    /// <summary>What SocketsHttpHandler does without a callback: plain TCP, for a connect before any engine exists.</summary>
    public static async ValueTask<Stream> ConnectPlainAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
