using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Accel.AspNetCore.Tests;

/// <summary>A logger provider that keeps what an application warns about, for tests that check a warning was (not) given.</summary>
public sealed class WarningRecorder : ILoggerProvider, ILogger
{
    private readonly ConcurrentQueue<string> _warnings = new();

    public IReadOnlyCollection<string> Warnings => _warnings;

    public ILogger CreateLogger(string categoryName) => this;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            _warnings.Enqueue(formatter(state, exception));
        }
    }

    public void Dispose()
    {
    }
}
