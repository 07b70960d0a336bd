using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// <summary>Sets VER_FLG_WEAK on one vernaux record of ELF64 little-endian shared objects (see GlibcxxWeakFix.targets).</summary>
public class DiffEggGlibcxxWeakFix : Task
{
    [Required] public ITaskItem[] Files { get; set; }
    [Required] public string VersionName { get; set; }

    static readonly string[] LibStdCandidates =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
    };

    public override bool Execute()
    {
        if (SystemHasVersion())
        {
            Log.LogMessage(MessageImportance.Low, "System libstdc++ provides " + VersionName + "; libLibTorchSharp.so left as it is.");
            return true;
        }
        foreach (var item in Files)
        {
            string path = item.GetMetadata("FullPath");
            if (!File.Exists(path)) continue;
            try
            {
                string result = Patch(path, VersionName);
                Log.LogMessage(MessageImportance.Normal, "DiffEgg: " + path + ": " + result);
            }
            catch (Exception e)
            {
                Log.LogWarning("DiffEgg: could not mark " + VersionName + " weak in " + path + ": " + e.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    bool SystemHasVersion()
    {
        byte[] needle = Encoding.ASCII.GetBytes(VersionName + "\0");
        bool found = false;
        foreach (var c in LibStdCandidates)
        {
            if (!File.Exists(c)) continue;
            found = true;
            if (IndexOf(File.ReadAllBytes(c), needle) >= 0) return true;
        }
        if (!found) Log.LogMessage(MessageImportance.Normal, "DiffEgg: no system libstdc++.so.6 found; patching libLibTorchSharp.so to be safe.");
        return false;
    }

    static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    /// <summary>Returns what was done; throws on a malformed file.</summary>
    public static string Patch(string path, string versionName)
    {
        byte[] b = File.ReadAllBytes(path);
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (b[4] != 2 || b[5] != 1) throw new InvalidDataException("not ELF64 little-endian");
        long shoff = BitConverter.ToInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        const uint SHT_GNU_verneed = 0x6ffffffe;
        for (int s = 0; s < shnum; s++)
        {
            long sh = shoff + (long)s * shentsize;
            uint type = BitConverter.ToUInt32(b, (int)sh + 4);
            if (type != SHT_GNU_verneed) continue;
            long off = BitConverter.ToInt64(b, (int)sh + 0x18);
            uint link = BitConverter.ToUInt32(b, (int)sh + 0x28);
            long strOff = BitConverter.ToInt64(b, (int)(shoff + (long)link * shentsize) + 0x18);
            long vn = off;
            while (true)
            {
                int cnt = BitConverter.ToUInt16(b, (int)vn + 2);
                uint aux = BitConverter.ToUInt32(b, (int)vn + 8);
                uint next = BitConverter.ToUInt32(b, (int)vn + 12);
                long va = vn + aux;
                for (int k = 0; k < cnt; k++)
                {
                    ushort flags = BitConverter.ToUInt16(b, (int)va + 4);
                    uint name = BitConverter.ToUInt32(b, (int)va + 8);
                    uint vnext = BitConverter.ToUInt32(b, (int)va + 12);
                    if (ReadCString(b, strOff + name) == versionName)
                    {
                        if ((flags & 0x2) != 0) return versionName + " already weak";
                        flags |= 0x2;
                        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
                        {
                            fs.Seek(va + 4, SeekOrigin.Begin);
                            fs.Write(BitConverter.GetBytes(flags), 0, 2);
                        }
                        return versionName + " marked weak";
                    }
                    if (vnext == 0) break;
                    va += vnext;
                }
                if (next == 0) break;
                vn += next;
            }
        }
        return "no " + versionName + " requirement";
    }

    static string ReadCString(byte[] b, long at)
    {
        int end = (int)at;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
    }
}
