using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Accel.Benchmarks.Http;

/// <summary>
/// What a stalled request's two ends hold, read by reflection for a stall file (<see cref="StallWatch"/>): the scalar
/// fields of every object of the given namespaces reachable from a root, so that a request that waits can be placed.
/// The client's side (<see cref="Client"/>): its handlers, pools, connections, their HTTP/2 streams, window credits and
/// write buffers: still in the client's unflushed output, or sent and unanswered. The server's side
/// (<see cref="Server"/>): the request's Kestrel stream, its output producer, the connection's frame writer and flow
/// control, and their pipes: answered but held in the server's output, or never answered. Private fields, so only for
/// diagnosis: nothing else reads it, and a runtime that renames them changes the text, not the run.
/// </summary>
internal static class StateDump
{
    private const int MaxDepth = 16;
    private const int MaxElements = 16;

    /// <summary>An <see cref="HttpClient"/>'s state: <c>System.Net.Http</c>, and any message handler (an
    /// IHttpClientFactory client's handlers, of <c>Microsoft.Extensions.Http</c>, stand between the client and its
    /// <see cref="SocketsHttpHandler"/>).</summary>
    public static string Client(HttpClient client)
        => Of(client, "client", static type => InNamespace(type, "System.Net.Http") || typeof(HttpMessageHandler).IsAssignableFrom(type));

    /// <summary>A request's state in Kestrel, from its features (for HTTP/2, its stream): Kestrel's objects, and the
    /// pipes and channels between them.</summary>
    public static string Server(object requestFeatures, string name)
        => Of(requestFeatures, name, static type => InNamespace(type, "Microsoft.AspNetCore.Server.Kestrel")
            || InNamespace(type, "System.IO.Pipelines") || InNamespace(type, "System.Threading.Channels"));

    private static string Of(object root, string name, Func<Type, bool> follows)
    {
        var text = new StringBuilder();
        Walk(root, name, 0, text, new HashSet<object>(ReferenceEqualityComparer.Instance), follows);
        return text.ToString();
    }

    private static bool InNamespace(Type type, string prefix) => type.Namespace?.StartsWith(prefix, StringComparison.Ordinal) == true;

    private static void Walk(object value, string name, int depth, StringBuilder text, HashSet<object> seen, Func<Type, bool> follows)
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
                        Element(item, $"[{i - 1}]", depth + 1, text, seen, follows);
                    }
                }
            }
            catch (InvalidOperationException e)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{indent}  ({e.Message})");
            }

            if (!follows(type))
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

                Element(v, field.Name, depth + 1, text, seen, follows);
            }
        }
    }

    private static void Element(object? v, string name, int depth, StringBuilder text, HashSet<object> seen, Func<Type, bool> follows)
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
        bool holds = follows(type)
            || (type.IsGenericType && type.GetGenericArguments().Any(follows))
            || (type.IsArray && type.GetElementType() is { } element && follows(element));
        // System.Net's own structs too: the connections' buffers (ArrayBuffer) and credits.
        if (holds || (type.IsValueType && InNamespace(type, "System.Net")))
        {
            Walk(v, name, depth, text, seen, follows);
        }
    }
}
