using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Text;

namespace Accel.ScopeDemo;

/// <summary>
/// Enough of the Redis protocol (RESP2) for StackExchange.Redis and a hand-written client: GET, SET, DEL, PING, ECHO,
/// and the commands a client sends while it connects (answered as a standalone primary would, or with an error it
/// tolerates). Plus <c>ACCEL</c>, which answers with what this side knows of the connection. A stand-in for a cache
/// on the same host; not a Redis.
/// </summary>
public sealed class RespServer
{
    private readonly ConcurrentDictionary<string, byte[]> _data = new();

    /// <summary>Serves one connection until the client closes it. <paramref name="describe"/> answers ACCEL.</summary>
    public async Task ServeAsync(PipeReader input, PipeWriter output, Func<string> describe, CancellationToken ct)
    {
        while (true)
        {
            ReadResult result = await input.ReadAsync(ct);
            ReadOnlySequence<byte> buffer = result.Buffer;
            bool wrote = false;
            while (TryParse(ref buffer, out List<byte[]>? command))
            {
                if (command.Count > 0)
                {
                    Execute(command, output, describe);
                    wrote = true;
                }
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (wrote)
            {
                await output.FlushAsync(ct);
            }

            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    private void Execute(List<byte[]> command, PipeWriter output, Func<string> describe)
    {
        string name = Encoding.ASCII.GetString(command[0]).ToUpperInvariant();
        switch (name)
        {
            case "PING" when command.Count > 1:
            case "ECHO" when command.Count > 1:
                Bulk(output, command[1]);
                break;
            case "PING":
                Simple(output, "+PONG");
                break;
            case "GET" when command.Count == 2:
                Bulk(output, _data.TryGetValue(Encoding.UTF8.GetString(command[1]), out byte[]? value) ? value : null);
                break;
            case "SET" when command.Count >= 3:
                _data[Encoding.UTF8.GetString(command[1])] = command[2];
                Simple(output, "+OK");
                break;
            case "DEL":
                Simple(output, $":{command.Skip(1).Count(k => _data.TryRemove(Encoding.UTF8.GetString(k), out _))}");
                break;
            case "ACCEL":
                Bulk(output, Encoding.UTF8.GetBytes(describe()));
                break;
            case "INFO":
                Bulk(output, "# Server\r\nredis_version:7.2.0\r\nredis_mode:standalone\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"u8.ToArray());
                break;
            case "CLIENT":
            case "SELECT":
                Simple(output, "+OK");
                break;
            case "CONFIG":
                Simple(output, "*0");
                break;
            case "SUBSCRIBE":
                for (int i = 1; i < command.Count; i++)
                {
                    Simple(output, "*3");
                    Bulk(output, "subscribe"u8.ToArray());
                    Bulk(output, command[i]);
                    Simple(output, $":{i}");
                }

                break;
            default:
                Simple(output, $"-ERR unknown command '{name}'");
                break;
        }
    }

    /// <summary>One array of bulk strings (what clients send), or false when the buffer does not hold a whole one yet.</summary>
    private static bool TryParse(ref ReadOnlySequence<byte> buffer, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out List<byte[]>? command)
    {
        command = null;
        var reader = new SequenceReader<byte>(buffer);
        if (!TryReadLine(ref reader, out string? header))
        {
            return false;
        }

        if (header.Length == 0 || header[0] != '*')
        {
            // An inline command ("PING\r\n"): words separated by spaces.
            command = header.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(Encoding.UTF8.GetBytes).ToList();
            buffer = buffer.Slice(reader.Position);
            return true;
        }

        int count = int.Parse(header.AsSpan(1));
        var parts = new List<byte[]>(Math.Max(count, 0));
        for (int i = 0; i < count; i++)
        {
            if (!TryReadLine(ref reader, out string? length) || reader.Remaining < int.Parse(length.AsSpan(1)) + 2)
            {
                return false;
            }

            byte[] part = new byte[int.Parse(length.AsSpan(1))];
            reader.TryCopyTo(part);
            reader.Advance(part.Length + 2);
            parts.Add(part);
        }

        command = parts;
        buffer = buffer.Slice(reader.Position);
        return true;
    }

    private static bool TryReadLine(ref SequenceReader<byte> reader, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? line)
    {
        line = null;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> bytes, "\r\n"u8))
        {
            return false;
        }

        line = Encoding.ASCII.GetString(bytes);
        return true;
    }

    private static void Simple(PipeWriter output, string line)
    {
        output.Write(Encoding.UTF8.GetBytes(line + "\r\n"));
    }

    private static void Bulk(PipeWriter output, byte[]? value)
    {
        if (value is null)
        {
            Simple(output, "$-1");
            return;
        }

        Simple(output, $"${value.Length}");
        output.Write(value);
        output.Write("\r\n"u8);
    }
}
