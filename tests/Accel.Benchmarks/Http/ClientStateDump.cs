using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Accel.Benchmarks.Http;

/// <summary>
/// What an <see cref="HttpClient"/>'s connections hold, read by reflection for a stall file (<see cref="StallWatch"/>):
/// the scalar fields of every object of <c>System.Net.Http</c> reachable from the client (its handlers, pools,
/// connections, their HTTP/2 streams, window credits, write buffers), so that a request that waits can be placed: still
/// in the client's unflushed output, or sent and unanswered. Private fields, so only for diagnosis: nothing else reads
/// it, and a runtime that renames them changes the text, not the run.
/// </summary>
internal static class ClientStateDump
{
    private const int MaxDepth = 16;
    private const int MaxElements = 16;

    public static string Of(HttpClient client)
    {
        var text = new StringBuilder();
        Walk(client, "client", 0, text, new HashSet<object>(ReferenceEqualityComparer.Instance));
        return text.ToString();
    }

    private static void Walk(object value, string name, int depth, StringBuilder text, HashSet<object> seen)
    {
        Type type = value.GetType();
        string indent = new(' ', 2 * depth);
        if (!seen.Add(value))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{indent}{name}: {type.Name} (above)");
            return;
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"{indent}{name}: {type.Name}");
        if (depth >= MaxDepth)
        {
            return;
        }

        if (value is IEnumerable items and not string)
        {
            try
            {
                int i = 0;
                foreach (object? item in items)
                {
                    if (i++ == MaxElements)
                    {
                        text.AppendLine(CultureInfo.InvariantCulture, $"{indent}  ...");
                        break;
                    }

                    if (item is not null)
                    {
                        Element(item, $"[{i - 1}]", depth + 1, text, seen);
                    }
                }
            }
            catch (InvalidOperationException e)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{indent}  ({e.Message})");
            }

            if (!IsHttp(type))
            {
                return; // a collection: its elements are what matters, not its buckets
            }
        }

        for (Type? t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            foreach (FieldInfo field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                object? v;
                try
                {
                    v = field.GetValue(value);
                }
                catch (Exception e) when (e is FieldAccessException or NotSupportedException or ArgumentException)
                {
                    continue;
                }

                Element(v, field.Name, depth + 1, text, seen);
            }
        }
    }

    private static void Element(object? v, string name, int depth, StringBuilder text, HashSet<object> seen)
    {
        string indent = new(' ', 2 * depth);
        switch (v)
        {
            case null:
                return;
            case string or bool or Enum or TimeSpan or DateTime or Uri or System.Net.EndPoint:
            case var _ when v.GetType().IsPrimitive:
                text.AppendLine(CultureInfo.InvariantCulture, $"{indent}{name} = {v}");
                return;
        }

        Type type = v.GetType();
        bool holdsHttp = IsHttp(type)
            || (type.IsGenericType && type.GetGenericArguments().Any(IsHttp))
            || (type.IsArray && type.GetElementType() is { } element && IsHttp(element));
        // System.Net's own structs too: the connections' buffers (ArrayBuffer) and credits.
        if (holdsHttp || (type.IsValueType && type.Namespace?.StartsWith("System.Net", StringComparison.Ordinal) == true))
        {
            Walk(v, name, depth, text, seen);
        }
    }

    /// <summary>A type of <c>System.Net.Http</c>, or any message handler: an IHttpClientFactory client's handlers
    /// (<c>Microsoft.Extensions.Http</c>) stand between the client and its <see cref="SocketsHttpHandler"/>.</summary>
    private static bool IsHttp(Type type)
        => type.Namespace?.StartsWith("System.Net.Http", StringComparison.Ordinal) == true || typeof(HttpMessageHandler).IsAssignableFrom(type);
}
