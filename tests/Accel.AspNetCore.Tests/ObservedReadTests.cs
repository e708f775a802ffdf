using System.Buffers;
using System.IO.Pipelines;
using Accel.AspNetCore.Internal;

namespace Accel.AspNetCore.Tests;

/// <summary>The one reusable source through which the transport's and the client stream's waiting reads reach their
/// callers, over real pipes (its end-to-end use is in every HTTP test).</summary>
public sealed class ObservedReadTests
{
    [Fact]
    public async Task A_read_that_waits_reaches_its_caller_through_the_observer_once()
    {
        var pipe = new Pipe();
        var observed = new List<long>();
        var source = new ObservedRead<ReadResult>(r =>
        {
            observed.Add(r.Buffer.Length);
            return r;
        });

        for (int i = 1; i <= 200; i++)
        {
            ValueTask<ReadResult> read = pipe.Reader.ReadAsync();
            Assert.False(read.IsCompleted);
            Assert.True(source.TryObserve(read, out ValueTask<ReadResult> caller));
            await pipe.Writer.WriteAsync(new byte[i]);
            ReadResult result = await caller;
            Assert.Equal(i, result.Buffer.Length);
            pipe.Reader.AdvanceTo(result.Buffer.End);
        }

        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), observed);
    }

    [Fact]
    public async Task The_caller_s_execution_context_flows_to_its_continuation()
    {
        var pipe = new Pipe();
        var source = new ObservedRead<ReadResult>(r => r);
        var local = new AsyncLocal<string>();
        var seen = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);

        // An awaiter's OnCompleted (unlike an async method's await, which restores its own context) relies on the
        // source to run the continuation in the context it was registered in.
        local.Value = "caller";
        Assert.True(source.TryObserve(pipe.Reader.ReadAsync(), out ValueTask<ReadResult> caller));
        caller.GetAwaiter().OnCompleted(() => seen.SetResult(local.Value));
        local.Value = "";
        await Task.Run(async () =>
        {
            local.Value = "writer";
            await pipe.Writer.WriteAsync(new byte[1]);
        });
        Assert.Equal("caller", await seen.Task);
    }

    [Fact]
    public async Task A_failed_read_throws_at_the_caller_and_the_source_serves_the_next_read()
    {
        var first = new Pipe();
        var source = new ObservedRead<ReadResult>(r => r);
        Assert.True(source.TryObserve(first.Reader.ReadAsync(), out ValueTask<ReadResult> failing));
        first.Writer.Complete(new IOException("connection reset"));
        IOException e = await Assert.ThrowsAsync<IOException>(async () => await failing);
        Assert.Equal("connection reset", e.Message);

        var second = new Pipe();
        Assert.True(source.TryObserve(second.Reader.ReadAsync(), out ValueTask<ReadResult> next));
        await second.Writer.WriteAsync(new byte[3]);
        Assert.Equal(3, (await next).Buffer.Length);
    }

    [Fact]
    public async Task A_canceled_read_throws_OperationCanceledException_at_the_caller()
    {
        var pipe = new Pipe();
        var source = new ObservedRead<ReadResult>(r => r);
        using var cancel = new CancellationTokenSource();
        Assert.True(source.TryObserve(pipe.Reader.ReadAsync(cancel.Token), out ValueTask<ReadResult> caller));
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await caller);
    }

    [Fact]
    public async Task A_second_read_is_refused_until_the_first_one_s_caller_has_its_result()
    {
        var a = new Pipe();
        var b = new Pipe();
        var source = new ObservedRead<ReadResult>(r => r);
        Assert.True(source.TryObserve(a.Reader.ReadAsync(), out ValueTask<ReadResult> first));
        ValueTask<ReadResult> other = b.Reader.ReadAsync();
        Assert.False(source.TryObserve(other, out _));

        await a.Writer.WriteAsync(new byte[1]);
        await b.Writer.WriteAsync(new byte[2]);
        ReadResult fromOther = await other; // a refused read stays the caller's to await
        Assert.Equal(2, fromOther.Buffer.Length);
        b.Reader.AdvanceTo(fromOther.Buffer.End);
        Assert.False(source.TryObserve(b.Reader.ReadAsync(), out _)); // the first read completed, but its caller has not taken it yet
        Assert.Equal(1, (await first).Buffer.Length);
    }
}
