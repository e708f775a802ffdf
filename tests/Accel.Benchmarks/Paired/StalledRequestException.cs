namespace Accel.Benchmarks.Paired;

/// <summary>
/// A benchmark request that made no progress until the stall watch gave up on it (<see cref="Http.StallWatch"/>): the
/// runner repeats the round of the case it belonged to, on new connections, and the report lists it. A failure of any
/// other kind still ends the run.
/// </summary>
internal sealed class StalledRequestException(string message, Exception inner) : Exception(message, inner)
{
    /// <summary>The same, saying where it happened (the mode, the call), for the report's list.</summary>
    public StalledRequestException In(string where) => new($"{where}: {Message}", InnerException!);
}
