using System.Text;

namespace DiffEgg.Common;

/// <summary>Writes files atomically: the content goes to a temporary file in the same folder, then is renamed over the target.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes through <paramref name="write"/> into a temp file beside <paramref name="path"/>, then renames it into place. A file-system
    /// failure becomes a <see cref="DiffEggException"/> that names <paramref name="path"/>, never the temporary file.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        string tmp = Path.Combine(dir, "." + Path.GetFileName(full) + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            if (Directory.Exists(full)) throw new DiffEggException($"{path}: is a folder; cannot write a file there");
            Directory.CreateDirectory(dir);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try { if (File.Exists(tmp)) File.Delete(tmp); } catch { /* best effort */ }
            if (e is IOException or UnauthorizedAccessException)
                throw new DiffEggException($"{path}: cannot write: {OutputTarget.Reason(e, tmp, full)}", e);
            throw;
        }
    }

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy, 0, copy.Length));
    }

    public static void WriteAllText(string path, string text) => WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));
}
