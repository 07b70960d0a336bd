using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Sharding;

/// <summary>An item a shard could not process: its key, the input file and the message.</summary>
public sealed record ShardFailure(string Item, string File, string Message);

/// <summary>
/// What one shard did, written last as <c>X.parts/shard-i-of-n.json</c>: the command, the shard, every item assigned to it (keys in
/// dataset order), how many were done now, skipped (their part existed) and failed. <see cref="Images"/> carries the COCO image entries
/// of a <c>refine</c> shard (the merge needs their sizes to read the parts back).
/// </summary>
public sealed record ShardManifest
{
    public required string Command { get; init; }
    public required int ShardIndex { get; init; }
    public required int ShardCount { get; init; }
    public required string Source { get; init; }
    public required IReadOnlyList<string> Items { get; init; }
    public int Done { get; init; }
    public int Skipped { get; init; }
    public IReadOnlyList<ShardFailure> Failed { get; init; } = Array.Empty<ShardFailure>();
    public IReadOnlyList<CocoImage> Images { get; init; } = Array.Empty<CocoImage>();

    /// <summary><c>shard-i-of-n.json</c>.</summary>
    public static string FileName(int index, int count) => $"shard-{index}-of-{count}.json";

    /// <summary>Writes the manifest atomically.</summary>
    public void Write(string path)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("command", Command);
            w.WriteNumber("shard_index", ShardIndex);
            w.WriteNumber("shard_count", ShardCount);
            w.WriteString("source", Source);
            w.WriteNumber("done", Done);
            w.WriteNumber("skipped", Skipped);
            w.WriteStartArray("failed");
            foreach (var f in Failed)
            {
                w.WriteStartObject();
                w.WriteString("item", f.Item);
                w.WriteString("file", f.File);
                w.WriteString("message", f.Message);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("items");
            foreach (var i in Items) w.WriteStringValue(i);
            w.WriteEndArray();
            if (Images.Count > 0) CocoFiles.WriteImages(w, Images);
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    /// <summary>Reads a manifest; a malformed one is a <see cref="DiffEggException"/> naming the file and field.</summary>
    public static ShardManifest Read(string path)
    {
        using var doc = JsonRead.Parse(path);
        var r = new JsonRead(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: expected a JSON object (a shard manifest)");
        const string rec = "manifest";
        var failed = new List<ShardFailure>();
        foreach (var f in r.Array(root, "failed", rec).EnumerateArray())
            failed.Add(new ShardFailure(r.String(f, "item", "failed[]"), r.String(f, "file", "failed[]"), r.String(f, "message", "failed[]")));
        var items = new List<string>();
        foreach (var i in r.Array(root, "items", rec).EnumerateArray())
            items.Add(i.ValueKind == JsonValueKind.String ? i.GetString()! : throw r.Error(rec, "items", "expected strings"));
        var images = new List<CocoImage>();
        if (r.TryGet(root, "images", out _)) CocoFiles.ReadImages(r, root, images);
        return new ShardManifest
        {
            Command = r.String(root, "command", rec),
            ShardIndex = r.Int32(root, "shard_index", rec),
            ShardCount = r.Int32(root, "shard_count", rec),
            Source = r.String(root, "source", rec),
            Done = r.Int32(root, "done", rec),
            Skipped = r.Int32(root, "skipped", rec),
            Failed = failed,
            Items = items,
            Images = images,
        };
    }
}

/// <summary>
/// The parts folder <c>X.parts/</c> of an output X: one part per item written atomically by the shard that owns it, and the shards'
/// manifests. A part that exists is complete (atomic rename), so a rerun skips it.
/// </summary>
public sealed class ShardParts
{
    /// <summary>The output the parts assemble into (a file or a folder, as the command writes it).</summary>
    public string Out { get; }
    /// <summary><c>X.parts</c> beside X.</summary>
    public string Dir { get; }

    public ShardParts(string output)
    {
        Out = output;
        Dir = DirOf(output);
    }

    /// <summary><c>X.parts</c> for an output X (a trailing separator of a folder name is ignored).</summary>
    public static string DirOf(string output) => Path.TrimEndingDirectorySeparator(output) + ".parts";

    /// <summary>Path of a part inside the parts folder, e.g. <c>X.parts/42.json</c> or <c>X.parts/panoptic/a.png</c>.</summary>
    public string PathOf(string relative) => Path.Combine(Dir, relative);

    /// <summary>Path of a shard's manifest.</summary>
    public string ManifestPath(ShardSpec shard) => PathOf(shard.ManifestName);

    /// <summary>The manifests present (<c>shard-*-of-*.json</c>), by file name.</summary>
    public IReadOnlyList<string> ManifestFiles() =>
        Directory.Exists(Dir)
            ? Directory.EnumerateFiles(Dir, "shard-*-of-*.json").OrderBy(p => p, StringComparer.Ordinal).ToList()
            : Array.Empty<string>();

    /// <summary>Creates the parts folder (a failure names it).</summary>
    public void Create()
    {
        try { Directory.CreateDirectory(Dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new DiffEggException($"{Dir}: cannot create the parts folder: {e.Message}", e); }
    }
}
