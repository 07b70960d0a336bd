using DiffEgg.Common;

namespace DiffEgg.Models;

/// <summary>
/// The small pixel-space model shipped with DiffEgg (<c>models/embedded/</c> in the repository, copied to <c>models/embedded/</c> beside the CLI).
/// Used when no <c>--model</c> is given.
/// </summary>
public static class EmbeddedModel
{
    /// <summary>Relative location of the embedded model folder (below the executable's folder or the repository root).</summary>
    public static readonly string RelativePath = Path.Combine("models", "embedded");

    /// <summary>The embedded model folder: <c>models/embedded</c> next to the executable, else found by walking up to the folder holding <c>DiffEgg.sln</c>; null when neither exists.</summary>
    public static string? FindDefaultPath()
    {
        string beside = Path.Combine(AppContext.BaseDirectory, RelativePath);
        if (IsModelFolder(beside)) return beside;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DiffEgg.sln")))
            {
                string p = Path.Combine(dir.FullName, RelativePath);
                return IsModelFolder(p) ? p : null;
            }
        }
        return null;
    }

    /// <summary>As <see cref="FindDefaultPath"/>, but throws a <see cref="DiffEggException"/> (asking for <c>--model</c>) when no embedded model is found.</summary>
    public static string DefaultPath => FindDefaultPath()
        ?? throw new DiffEggException($"embedded model not found ({Path.Combine(AppContext.BaseDirectory, RelativePath)} or {RelativePath} under the repository root); pass --model DIR");

    static bool IsModelFolder(string p) => File.Exists(Path.Combine(p, "unet", "config.json"));
}
