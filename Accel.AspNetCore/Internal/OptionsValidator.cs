using Microsoft.Extensions.Options;

namespace Accel.AspNetCore.Internal;

internal sealed class OptionsValidator : IValidateOptions<SidecarlessAccelerationOptions>
{
    public ValidateOptionsResult Validate(string? name, SidecarlessAccelerationOptions options)
    {
        try
        {
            options.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException e)
        {
            return ValidateOptionsResult.Fail($"{SidecarlessAccelerationOptions.SectionName}:{e.ParamName}: {e.Message}");
        }
    }
}
