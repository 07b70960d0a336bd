namespace DiffEgg.Common;

/// <summary>Warnings of the library that are not errors (e.g. unknown keys in a model's config.json); a front end subscribes to show them.</summary>
public static class DiffEggWarnings
{
    /// <summary>Raised with one line per warning; without a subscriber warnings are dropped.</summary>
    public static event Action<string>? Raised;

    public static void Warn(string message) => Raised?.Invoke(message);
}
