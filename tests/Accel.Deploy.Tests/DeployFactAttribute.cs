namespace Accel.Deploy.Tests;

/// <summary>A test that deploys the example containers with a Docker engine of its own: skipped with the reason
/// where that cannot be done, unless ACCEL_REQUIRE_DEPLOY=1 (CI), where it runs and fails instead.</summary>
public sealed class DeployFactAttribute : FactAttribute
{
    public DeployFactAttribute()
    {
        string? reason = PrivateDockerEngine.UnavailableReason();
        if (reason is not null && Environment.GetEnvironmentVariable("ACCEL_REQUIRE_DEPLOY") != "1")
        {
            Skip = $"Deploying containers needs {reason}. Set ACCEL_REQUIRE_DEPLOY=1 to fail instead of skipping.";
        }
    }
}
