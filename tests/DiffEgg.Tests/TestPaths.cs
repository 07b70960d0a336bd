namespace DiffEgg.Tests;

/// <summary>Locates the shared test fixtures: walks up from the test assembly until an ancestor has a sibling/child <c>shared/fixtures/sd15-tiny</c>.</summary>
public static class TestPaths
{
    static readonly Lazy<string> _shared = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null)
        {
            var candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "fixtures", "sd15-tiny"))) return candidate;
            dir = dir.Parent;
        }
        throw new DirectoryNotFoundException($"no shared/fixtures/sd15-tiny above {AppContext.BaseDirectory}");
    });

    /// <summary>The <c>shared</c> folder.</summary>
    public static string Shared => _shared.Value;

    /// <summary>The tiny SD 1.5-structured fixture folder (diffusers layout: unet/, vae/, text_encoder/, scheduler/).</summary>
    public static string Sd15Tiny => Path.Combine(Shared, "fixtures", "sd15-tiny");

    public static string Fixture(params string[] parts) => Path.Combine(new[] { Sd15Tiny }.Concat(parts).ToArray());
}
