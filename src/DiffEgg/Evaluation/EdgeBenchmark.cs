using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Formats;

namespace DiffEgg.Evaluation;

/// <summary>One scene of an edge benchmark folder: image, panoptic segment-id PNG and the hard pairs (as panoptic segment ids).</summary>
/// <param name="Things">segment ids of the scene's thing (object) segments, whose boundaries the gap measure scores; null = every segment</param>
public sealed record EdgeBenchItem(string Name, string ImagePath, string PanopticPath, IReadOnlyList<(int A, int B)> HardPairs,
    IReadOnlyList<int>? Things = null);

/// <summary>Loads a folder written by `diffegg synth` (panoptic.json, panoptic/, images/, hard_pairs.json) for edge scoring.</summary>
public static partial class EdgeBenchmark
{
    /// <summary>Lists the scenes of <paramref name="dir"/> in panoptic.json order with their hard pairs from hard_pairs.json.</summary>
    public static IReadOnlyList<EdgeBenchItem> Load(string dir)
    {
        string panPath = Path.Combine(dir, "panoptic.json"), hardPath = Path.Combine(dir, "hard_pairs.json");
        if (!Directory.Exists(dir)) throw new DiffEggException($"{dir}: no such folder");
        var pan = PanopticFiles.ReadJson(panPath, groundTruth: true);
        var imageNames = pan.Images.ToDictionary(i => i.Id, i => i.FileName);
        var hard = ReadHardPairs(hardPath);
        var thingCategories = pan.Categories.Where(c => c.IsThing == 1).Select(c => c.Id).ToHashSet();
        var items = new List<EdgeBenchItem>();
        foreach (var a in pan.Annotations)
        {
            if (!imageNames.TryGetValue(a.ImageId, out var imgName))
                throw new DiffEggException($"{panPath}: annotation for image_id {a.ImageId} has no entry in images");
            items.Add(new EdgeBenchItem(Path.GetFileNameWithoutExtension(a.FileName), Path.Combine(dir, "images", imgName),
                Path.Combine(dir, "panoptic", a.FileName), hard.TryGetValue(a.ImageId, out var p) ? p : Array.Empty<(int, int)>(),
                a.Segments.Where(g => thingCategories.Contains(g.CategoryId)).Select(g => (int)g.Id).ToArray()));
        }
        return items;
    }

    /// <summary>Reads hard_pairs.json: image_id → list of (segment id A, segment id B).</summary>
    public static Dictionary<long, IReadOnlyList<(int A, int B)>> ReadHardPairs(string path)
    {
        if (!File.Exists(path)) throw new DiffEggException($"{path}: file not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new DiffEggException($"{path}: not valid JSON ({e.Message})"); }
        using (doc)
        {
            var res = new Dictionary<long, IReadOnlyList<(int, int)>>();
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("images", out var images) || images.ValueKind != JsonValueKind.Array)
                throw new DiffEggException($"{path}: expected an object with an 'images' list");
            int k = 0;
            foreach (var im in images.EnumerateArray())
            {
                try
                {
                    long id = im.GetProperty("image_id").GetInt64();
                    var pairs = new List<(int, int)>();
                    foreach (var p in im.GetProperty("pairs").EnumerateArray())
                    {
                        var s = p.GetProperty("segment_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                        if (s.Length != 2) throw new InvalidOperationException("segment_ids must hold 2 ids");
                        pairs.Add((s[0], s[1]));
                    }
                    res[id] = pairs;
                }
                catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
                {
                    throw new DiffEggException($"{path}: images[{k}]: {e.Message} (expected image_id and pairs[].segment_ids)");
                }
                k++;
            }
            return res;
        }
    }
}
