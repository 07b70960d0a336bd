namespace DiffEgg.Tests;

/// <summary>
/// The one temporary folder of the tests: a fresh folder under the system temp folder, deleted with everything in it on
/// <see cref="Dispose"/> (<c>using var dir = new TempDir("diffegg-x");</c>, or a field of an <see cref="IDisposable"/> test class /
/// class fixture). <see cref="Path"/> is the folder itself, or, with <c>sub</c>, a path inside it that is not created
/// (for commands that must create their output folder). Converts to its <see cref="Path"/> where a string is expected.
/// </summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "diffegg-test-", string? sub = null)
    {
        Root = Directory.CreateTempSubdirectory(prefix).FullName;
        Path = sub is null ? Root : System.IO.Path.Combine(Root, sub);
    }

    /// <summary>The created folder, deleted on <see cref="Dispose"/>.</summary>
    public string Root { get; }

    /// <summary><see cref="Root"/>, or the <c>sub</c> path inside it.</summary>
    public string Path { get; }

    public string File(params string[] parts) => System.IO.Path.Combine(new[] { Path }.Concat(parts).ToArray());

    public override string ToString() => Path;

    public static implicit operator string(TempDir d) => d.Path;

    /// <summary>Deletes <see cref="Root"/>; read-only files are made writable first, and a folder still in use is retried briefly.</summary>
    public void Dispose()
    {
        for (int attempt = 0; attempt < 5 && Directory.Exists(Root); attempt++)
        {
            try
            {
                foreach (var f in Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories))
                    if ((System.IO.File.GetAttributes(f) & FileAttributes.ReadOnly) != 0) System.IO.File.SetAttributes(f, FileAttributes.Normal);
                Directory.Delete(Root, true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Thread.Sleep(50 * (attempt + 1));
            }
        }
    }
}
