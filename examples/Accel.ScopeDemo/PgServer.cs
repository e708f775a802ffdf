using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;

namespace Accel.ScopeDemo;

/// <summary>
/// Enough of the PostgreSQL wire protocol (v3) for Npgsql without type loading (<c>Server Compatibility
/// Mode=NoTypeLoading</c>): start-up without authentication, and the extended query protocol, where every query
/// returns one row with one text column holding its first parameter (an echo), or, for a query that mentions
/// <c>accel</c>, what this side knows of the connection. A stand-in for a database on the same host; not PostgreSQL.
/// </summary>
public sealed class PgServer
{
    private const int SslRequest = 80877103, GssEncRequest = 80877104, ProtocolV3 = 196608;

    /// <summary>Serves one connection until the client ends it. <paramref name="describe"/> answers the accel query.</summary>
    public async Task ServeAsync(PipeReader input, PipeWriter output, Func<string> describe, CancellationToken ct)
    {
        bool started = false;
        byte[]? parameter = null;
        bool binary = false, accel = false;
        while (true)
        {
            ReadResult result = await input.ReadAsync(ct);
            ReadOnlySequence<byte> buffer = result.Buffer;
            bool flush = false;
            while (true)
            {
                if (!started)
                {
                    // Start-up messages have no type byte: length, then a code.
                    if (buffer.Length < 8)
                    {
                        break;
                    }

                    int length = ReadInt32(buffer.Slice(0, 4));
                    if (buffer.Length < length)
                    {
                        break;
                    }

                    int code = ReadInt32(buffer.Slice(4, 4));
                    buffer = buffer.Slice(length);
                    if (code is SslRequest or GssEncRequest)
                    {
                        output.Write("N"u8); // no encryption: the client goes on in the clear
                    }
                    else if (code == ProtocolV3)
                    {
                        started = true;
                        WriteStartup(output);
                    }
                    else
                    {
                        return;
                    }

                    flush = true;
                    continue;
                }

                if (buffer.Length < 5)
                {
                    break;
                }

                byte type = buffer.FirstSpan[0];
                int size = ReadInt32(buffer.Slice(1, 4));
                if (buffer.Length < 1 + size)
                {
                    break;
                }

                byte[] body = buffer.Slice(5, size - 4).ToArray();
                buffer = buffer.Slice(1 + size);
                switch ((char)type)
                {
                    case 'P': // Parse: name, query, parameter types
                        accel = ReadCString(body, 0 + ReadCString(body, 0).Length + 1).Contains("accel", StringComparison.OrdinalIgnoreCase);
                        Message(output, '1', []);
                        break;
                    case 'B': // Bind: portal, statement, parameter formats, parameters, result formats
                        (parameter, binary) = ParseBind(body);
                        Message(output, '2', []);
                        break;
                    case 'D': // Describe (the portal): one text column
                        WriteRowDescription(output, binary);
                        break;
                    case 'E': // Execute: the row
                        byte[] value = accel ? Encoding.UTF8.GetBytes(describe()) : parameter ?? [];
                        var row = new byte[2 + 4 + value.Length];
                        BinaryPrimitives.WriteInt16BigEndian(row, 1);
                        BinaryPrimitives.WriteInt32BigEndian(row.AsSpan(2), value.Length);
                        value.CopyTo(row, 6);
                        Message(output, 'D', row);
                        Message(output, 'C', "SELECT 1\0"u8);
                        break;
                    case 'S': // Sync
                        Message(output, 'Z', "I"u8);
                        flush = true;
                        break;
                    case 'Q': // a simple query: no rows
                        Message(output, 'I', []);
                        Message(output, 'Z', "I"u8);
                        flush = true;
                        break;
                    case 'X': // Terminate
                        return;
                    default: // Close, Flush and the rest need no answer here
                        break;
                }
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (flush)
            {
                await output.FlushAsync(ct);
            }

            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    private static void WriteStartup(PipeWriter output)
    {
        Message(output, 'R', [0, 0, 0, 0]); // AuthenticationOk
        foreach (var (name, value) in new[]
        {
            ("server_version", "16.0"), ("server_encoding", "UTF8"), ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"), ("standard_conforming_strings", "on"), ("TimeZone", "UTC"),
        })
        {
            Message(output, 'S', Encoding.UTF8.GetBytes($"{name}\0{value}\0"));
        }

        Message(output, 'K', [0, 0, 0, 1, 0, 0, 0, 1]); // BackendKeyData
        Message(output, 'Z', "I"u8);
    }

    /// <summary>The first parameter's bytes, and whether the client wants the result in binary (for text: the same bytes).</summary>
    private static (byte[]? Parameter, bool Binary) ParseBind(byte[] body)
    {
        int at = ReadCString(body, 0).Length + 1;
        at += ReadCString(body, at).Length + 1;
        int formats = BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(at));
        at += 2 + 2 * formats;
        int count = BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(at));
        at += 2;
        byte[]? first = null;
        for (int i = 0; i < count; i++)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(at));
            at += 4;
            if (length >= 0)
            {
                first ??= body.AsSpan(at, length).ToArray();
                at += length;
            }
        }

        int resultFormats = BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(at));
        bool binary = resultFormats > 0 && BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(at + 2)) == 1;
        return (first, binary);
    }

    private static void WriteRowDescription(PipeWriter output, bool binary)
    {
        byte[] name = "echo\0"u8.ToArray();
        var field = new byte[2 + name.Length + 18];
        BinaryPrimitives.WriteInt16BigEndian(field, 1);
        name.CopyTo(field, 2);
        Span<byte> f = field.AsSpan(2 + name.Length);
        BinaryPrimitives.WriteInt32BigEndian(f, 0);            // table oid
        BinaryPrimitives.WriteInt16BigEndian(f[4..], 0);       // column number
        BinaryPrimitives.WriteInt32BigEndian(f[6..], 25);      // type: text
        BinaryPrimitives.WriteInt16BigEndian(f[10..], -1);     // variable length
        BinaryPrimitives.WriteInt32BigEndian(f[12..], -1);     // no modifier
        BinaryPrimitives.WriteInt16BigEndian(f[16..], (short)(binary ? 1 : 0));
        Message(output, 'T', field);
    }

    private static void Message(PipeWriter output, char type, ReadOnlySpan<byte> body)
    {
        Span<byte> header = stackalloc byte[5];
        header[0] = (byte)type;
        BinaryPrimitives.WriteInt32BigEndian(header[1..], body.Length + 4);
        output.Write(header);
        output.Write(body);
    }

    private static int ReadInt32(ReadOnlySequence<byte> bytes)
    {
        Span<byte> b = stackalloc byte[4];
        bytes.Slice(0, 4).CopyTo(b);
        return BinaryPrimitives.ReadInt32BigEndian(b);
    }

    private static string ReadCString(byte[] body, int at)
    {
        int end = Array.IndexOf(body, (byte)0, at);
        return Encoding.UTF8.GetString(body, at, end - at);
    }
}
