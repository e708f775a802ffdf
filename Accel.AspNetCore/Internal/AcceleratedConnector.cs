using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

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
                accel.PrepareConnect(socket);
                await socket.ConnectAsync(new IPEndPoint(address, target.Port), cancellationToken).ConfigureAwait(false);
                SocketRegistration registration = accel.Register(socket);
                return registration.IsRegistered ? new AcceleratedNetworkStream(socket, registration) : new NetworkStream(socket, ownsSocket: true);
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

    /// <summary>Counts what the client consumes, for the backlog bound of the server's redirected responses.</summary>
    private sealed class AcceleratedNetworkStream(Socket socket, SocketRegistration registration) : NetworkStream(socket, ownsSocket: true)
    {
        private long _read;

        public override int Read(Span<byte> buffer) => Count(base.Read(buffer));

        public override int Read(byte[] buffer, int offset, int count) => Count(base.Read(buffer, offset, count));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => Count(await base.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        private int Count(int n)
        {
            if (n > 0)
            {
                _read += n;
                registration.ReportConsumed(_read);
            }

            return n;
        }
    }
}
