namespace DiffEgg.Common;

/// <summary>
/// Where a command writes. <see cref="CheckFile"/> and <see cref="CheckFolder"/> are called before any expensive work (before a model
/// is loaded): they prove that the output can be created there by creating and deleting a probe file, and name the output path (never
/// the probe) when it cannot. Together with <see cref="AtomicFile"/> (one file) and <see cref="StagedOutput"/> (several files that
/// belong together) they implement the project rule "a run with nothing valid to write leaves existing outputs untouched".
/// </summary>
public static class OutputTarget
{
    /// <summary>
    /// Checks that the file <paramref name="path"/> can be created or replaced: it is not a folder, and its folder (or, when that does
    /// not exist yet, the nearest existing ancestor, in which the missing folders will be created) is a folder that accepts new files.
    /// Throws <see cref="DiffEggException"/> naming <paramref name="path"/> (and <paramref name="option"/>, e.g. "--out").
    /// </summary>
    public static void CheckFile(string path, string? option = null)
    {
        string full = Full(path, option);
        if (Directory.Exists(full)) throw Fail(path, option, "is a folder; a file name is needed");
        Probe(path, option, Path.GetDirectoryName(full) ?? full);
    }

    /// <summary>Checks that files can be written in the folder <paramref name="dir"/> (existing, or to be created inside its nearest existing ancestor). Throws <see cref="DiffEggException"/> naming <paramref name="dir"/>.</summary>
    public static void CheckFolder(string dir, string? option = null)
    {
        string full = Full(dir, option);
        if (File.Exists(full)) throw Fail(dir, option, "is a file, not a folder");
        Probe(dir, option, full);
    }

    static string Full(string path, string? option)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new DiffEggException($"{option ?? "output"}: no path given");
        try { return Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { throw Fail(path, option, $"not a usable path ({e.Message})"); }
    }

    static DiffEggException Fail(string path, string? option, string what, Exception? inner = null)
    {
        string message = $"{path}: {(option is null ? "" : $"{option}: ")}{what}";
        return inner is null ? new DiffEggException(message) : new DiffEggException(message, inner);
    }

    /// <summary>Creates and deletes a probe file in <paramref name="dir"/> or, when it does not exist, in its nearest existing ancestor.</summary>
    static void Probe(string shown, string? option, string dir)
    {
        string existing = dir;
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing)) throw Fail(shown, option, $"cannot be created: {existing} is a file, not a folder");
            string? parent = Path.GetDirectoryName(existing);
            if (parent is null || parent == existing) throw Fail(shown, option, "cannot be created: no existing folder above it");
            existing = parent;
        }
        string probe = Path.Combine(existing, $".diffegg-probe-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Fail(shown, option, $"cannot write there ({existing}: {Reason(e, probe, existing)})", e);
        }
        finally
        {
            try { if (File.Exists(probe)) File.Delete(probe); } catch { /* best effort: DeleteOnClose normally removed it */ }
        }
    }

    /// <summary>A short reason for a failed file-system operation, with any temporary or probe path <paramref name="hidden"/> replaced by <paramref name="shown"/>.</summary>
    public static string Reason(Exception e, string? hidden, string shown)
    {
        string m = e.Message;
        if (e is UnauthorizedAccessException) return "permission denied";
        if (m.Contains("Read-only file system", StringComparison.OrdinalIgnoreCase)) return "read-only file system";
        if (m.Contains("No space left", StringComparison.OrdinalIgnoreCase)) return "no space left on the device";
        if (e is FileNotFoundException or DirectoryNotFoundException) return "no new files can be created in this folder";
        return hidden is null ? m : m.Replace(hidden, shown);
    }
}

/// <summary>
/// Several output files that belong together (e.g. <c>panoptic.json</c> and its <c>panoptic/</c> PNG folder), written into a hidden
/// staging folder inside the target folder and moved into place by <see cref="Commit"/>: each top-level entry of the stage replaces the
/// entry of the same name in the target (a folder as a whole, so no file of an earlier run is left in it; folders first, files last, each
/// by a rename). Disposing an uncommitted stage deletes it and leaves the target as it was.
/// </summary>
public sealed class StagedOutput : IDisposable
{
    readonly string _target;
    readonly bool _createdTarget;
    bool _done;

    /// <summary>The staging folder: write the outputs under it with the layout they should have in the target.</summary>
    public string Root { get; }

    StagedOutput(string target, string root, bool createdTarget) { _target = target; Root = root; _createdTarget = createdTarget; }

    /// <summary>Creates the staging folder inside <paramref name="targetDir"/> (creating that folder when needed).</summary>
    public static StagedOutput Begin(string targetDir)
    {
        string full = Path.GetFullPath(targetDir);
        bool created = !Directory.Exists(full);
        string root = Path.Combine(full, $".staging-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        try { Directory.CreateDirectory(root); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiffEggException($"{targetDir}: cannot write there: {OutputTarget.Reason(e, root, targetDir)}", e);
        }
        return new StagedOutput(full, root, created);
    }

    /// <summary>The staged path of <paramref name="relative"/> (e.g. "panoptic/x.png").</summary>
    public string PathOf(string relative) => Path.Combine(Root, relative);

    /// <summary>Moves every top-level entry of the stage over the entry of the same name in the target, then removes the stage.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        var dirs = Directory.GetDirectories(Root).OrderBy(p => p, StringComparer.Ordinal);
        var files = Directory.GetFiles(Root).OrderBy(p => p, StringComparer.Ordinal);
        foreach (var src in dirs)
        {
            string dst = Path.Combine(_target, Path.GetFileName(src));
            try
            {
                if (File.Exists(dst)) File.Delete(dst);
                string? old = null;
                if (Directory.Exists(dst))
                {
                    old = Path.Combine(Root, ".old-" + Path.GetFileName(src));
                    Directory.Move(dst, old);
                }
                Directory.Move(src, dst);
                if (old is not null) Directory.Delete(old, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DiffEggException($"{dst}: cannot replace it: {OutputTarget.Reason(e, src, dst)}", e);
            }
        }
        foreach (var src in files)
        {
            string dst = Path.Combine(_target, Path.GetFileName(src));
            try
            {
                if (Directory.Exists(dst)) throw new DiffEggException($"{dst}: is a folder; cannot replace it with a file");
                File.Move(src, dst, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DiffEggException($"{dst}: cannot replace it: {OutputTarget.Reason(e, src, dst)}", e);
            }
        }
        Directory.Delete(Root, recursive: true);
        _done = true;
    }

    /// <summary>Deletes an uncommitted stage (and the target folder when this stage created it and it is empty).</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        try
        {
            if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
            if (_createdTarget && Directory.Exists(_target) && !Directory.EnumerateFileSystemEntries(_target).Any()) Directory.Delete(_target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* best effort */ }
    }
}
