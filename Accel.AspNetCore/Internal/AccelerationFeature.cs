namespace Accel.AspNetCore.Internal;

internal sealed class AccelerationFeature(SocketRegistration registration) : IAccelerationFeature
{
    private long _inbound;

    public SocketRegistration Registration => registration;

    public bool IsAccelerated => registration.IsRegistered;

    public RegistrationOutcome Outcome => registration.Outcome;

    public string? Detail => registration.Detail;

    public ConnectionStatistics Outbound => registration.GetStatistics();

    public long InboundBytes => Volatile.Read(ref _inbound);

    /// <summary>Called by the reading side with its running total: feeds the backlog bound.</summary>
    public void OnConsumed(long total)
    {
        Volatile.Write(ref _inbound, total);
        registration.ReportConsumed(total);
    }
}
