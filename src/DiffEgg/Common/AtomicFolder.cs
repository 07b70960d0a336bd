namespace DiffEgg.Common;

/// <summary>Folder writes that never leave a half-written component: content is written into a temporary sibling folder, then moved into place.</summary>
public static class AtomicFolder
{
    /// <summary>A fresh temporary sibling path of <paramref name="fullPath"/> (<c>.name.PID.RANDOM.tmp</c>, same parent folder, so moves are renames).</summary>
    public static string TempSibling(string fullPath)
    {
        string full = Path.GetFullPath(fullPath).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        return Path.Combine(parent, "." + Path.GetFileName(full) + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
    }

    /// <summary>
    /// Moves the entries <paramref name="entries"/> (files or folders) of <paramref name="tmp"/> into <paramref name="target"/>, replacing the old
    /// ones (an old folder is renamed aside first, then deleted; files are renamed over). Other content of <paramref name="target"/> is kept.
    /// When <paramref name="target"/> does not exist, <paramref name="tmp"/> itself is renamed to it.
    /// </summary>
    public static void ReplaceEntries(string tmp, string target, IEnumerable<string> entries)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(tmp, target);
            return;
        }
        string stamp = "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N")[..8] + ".old";
        foreach (var e in entries)
        {
            string src = Path.Combine(tmp, e), dst = Path.Combine(target, e), old = dst + stamp;
            if (Directory.Exists(src))
            {
                if (Directory.Exists(dst)) Directory.Move(dst, old);
                Directory.Move(src, dst);
                if (Directory.Exists(old)) Directory.Delete(old, true);
            }
            else
            {
                File.Move(src, dst, overwrite: true);
            }
        }
    }
}
