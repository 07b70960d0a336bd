using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Sharding;

/// <summary>The per-item part files of each command, and the names of the commands that write parts.</summary>
public static class ShardLayout
{
    public const string Edges = "edges", Refine = "refine", Panoptic = "panoptic", Baseline = "baseline", Segment = "segment";

    /// <summary>
    /// The files that make item <paramref name="item"/>'s part: <c>edges</c> writes its three per-image files straight into the output
    /// folder (they are final); <c>refine</c> one results list <c>X.parts/&lt;image id&gt;.json</c>; <c>panoptic</c> a one-image panoptic
    /// JSON <c>X.parts/&lt;stem&gt;.json</c> and its PNG <c>X.parts/panoptic/&lt;stem&gt;.png</c>; <c>segment</c> the coarse and refined
    /// results <c>X.parts/&lt;image id&gt;.{coarse,refined}.json</c> (its edges and overlays go straight into the folder X).
    /// </summary>
    public static IReadOnlyList<string> PartFiles(string command, ShardParts parts, string item)
    {
        string stem = Path.GetFileNameWithoutExtension(item);
        return command switch
        {
            Edges => new[] { Path.Combine(parts.Out, stem + ".ternary.png"), Path.Combine(parts.Out, stem + ".edges.safetensors"), Path.Combine(parts.Out, stem + ".json") },
            Refine or Baseline => new[] { parts.PathOf(item + ".json") },
            Panoptic => new[] { parts.PathOf(stem + ".json"), parts.PathOf(Path.Combine("panoptic", stem + ".png")) },
            Segment => new[] { parts.PathOf(item + ".coarse.json"), parts.PathOf(item + ".refined.json") },
            _ => throw new ArgumentException($"unknown sharded command '{command}'", nameof(command)),
        };
    }

    /// <summary>True when every file of the item's part exists (each was written atomically, so an existing file is complete).</summary>
    public static bool IsDone(string command, ShardParts parts, string item) => PartFiles(command, parts, item).All(File.Exists);
}

/// <summary>What <see cref="ShardMerge.Merge"/> found and wrote.</summary>
public sealed record MergeReport(string Command, int ShardCount, int Items, int Merged, IReadOnlyList<int> MissingShards,
    IReadOnlyList<(string Item, string Why)> MissingItems, bool Written, string Message);

/// <summary>
/// <c>diffegg merge X</c>: assembles the parts of a sharded run into X, exactly as one unsharded run writes it (COCO results sorted by
/// image id; panoptic JSON in file-name order with its PNG folder; edges need no assembly, their completeness is checked).
/// </summary>
public static class ShardMerge
{
    /// <summary>
    /// Reads every manifest of <c>X.parts</c>, checks that the n shards and every item's part are present, and writes X atomically.
    /// Missing shards or parts are a <see cref="DiffEggException"/> naming them (nothing is written) unless <paramref name="allowMissing"/>,
    /// which merges what is there and reports the rest.
    /// </summary>
    public static MergeReport Merge(string output, bool allowMissing)
    {
        var parts = new ShardParts(output);
        if (!Directory.Exists(parts.Dir)) throw new DiffEggException($"{parts.Dir}: no such folder: nothing to merge (X.parts is written by a sharded run or a run with --resume)");
        var files = parts.ManifestFiles();
        if (files.Count == 0) throw new DiffEggException($"{parts.Dir}: no shard manifest (shard-i-of-n.json): no shard has finished yet");
        var manifests = files.Select(ShardManifest.Read).ToList();
        var counts = manifests.Select(m => m.ShardCount).Distinct().ToList();
        if (counts.Count > 1)
            throw new DiffEggException($"{parts.Dir}: manifests of runs with different shard counts ({string.Join(", ", counts)}): {string.Join(", ", files.Select(Path.GetFileName))}; remove the stale ones");
        var commands = manifests.Select(m => m.Command).Distinct().ToList();
        if (commands.Count > 1) throw new DiffEggException($"{parts.Dir}: manifests of different commands ({string.Join(", ", commands)})");
        string command = commands[0];
        int n = counts[0];
        var present = manifests.Select(m => m.ShardIndex).ToHashSet();
        var missingShards = Enumerable.Range(0, n).Where(i => !present.Contains(i)).ToList();

        var failedBy = manifests.SelectMany(m => m.Failed.Select(f => (f.Item, Why: $"failed in shard {m.ShardIndex}: {f.Message}"))).GroupBy(x => x.Item).ToDictionary(g => g.Key, g => g.First().Why);
        var items = manifests.SelectMany(m => m.Items).Distinct().ToList();
        var done = items.Where(i => ShardLayout.IsDone(command, parts, i)).ToList();
        var missingItems = items.Where(i => !ShardLayout.IsDone(command, parts, i))
            .Select(i => (Item: i, Why: failedBy.TryGetValue(i, out var why) ? why : "no part")).ToList();

        if ((missingShards.Count > 0 || missingItems.Count > 0) && !allowMissing)
        {
            var what = new List<string>();
            if (missingShards.Count > 0) what.Add($"{missingShards.Count} of {n} shard manifest(s) missing: {string.Join(", ", missingShards.Select(i => ShardManifest.FileName(i, n)))}");
            if (missingItems.Count > 0)
                what.Add($"{missingItems.Count} item(s) without a part: {string.Join("; ", missingItems.Take(10).Select(x => $"{x.Item} ({x.Why})"))}{(missingItems.Count > 10 ? $"; … {missingItems.Count - 10} more" : "")}");
            throw new DiffEggException($"{output}: not merged: {string.Join("; ", what)} (rerun the missing shards, or --allow-missing)");
        }

        string message;
        bool written = true;
        switch (command)
        {
            case ShardLayout.Edges:
                written = false;
                message = $"{output}: edges need no merge: the folder holds the files of {done.Count} image(s) written by {present.Count} shard(s)";
                break;
            case ShardLayout.Refine:
                MergeRefine(parts, manifests, done);
                message = $"{output}: merged the results of {done.Count} image(s) from {present.Count} shard(s)";
                break;
            case ShardLayout.Baseline:
                MergeRefine(parts, manifests, done);
                string list = Data.ImageSet.ListPathFor(output);
                if (File.Exists(parts.PathOf("images.json"))) AtomicFile.WriteAllBytes(list, File.ReadAllBytes(parts.PathOf("images.json")));
                message = $"{output}: merged the coarse masks of {done.Count} image(s) from {present.Count} shard(s)";
                break;
            case ShardLayout.Segment:
                MergeSegment(parts, manifests, done);
                message = $"{output}: merged the masks of {done.Count} image(s) from {present.Count} shard(s) into results.json, baseline.json, images.json and index.html";
                break;
            case ShardLayout.Panoptic:
                MergePanoptic(parts, done);
                message = $"{output}: merged {done.Count} panoptic pseudo-label(s) from {present.Count} shard(s)";
                break;
            default: throw new DiffEggException($"{files[0]}: unknown command '{command}'");
        }
        return new MergeReport(command, n, items.Count, done.Count, missingShards, missingItems, written, message);
    }

    /// <summary>The image entries the shards recorded (refine, baseline, segment), once per id: the reader of their parts needs the sizes.</summary>
    static CocoDataset ManifestImages(List<ShardManifest> manifests) =>
        new() { Images = manifests.SelectMany(m => m.Images).GroupBy(i => i.Id).Select(g => g.First()).ToList() };

    static void MergeRefine(ShardParts parts, List<ShardManifest> manifests, List<string> done)
    {
        var images = ManifestImages(manifests);
        var all = new List<CocoResult>();
        foreach (var item in done.OrderBy(i => long.Parse(i, System.Globalization.CultureInfo.InvariantCulture)))
            all.AddRange(CocoFiles.ReadResults(parts.PathOf(item + ".json"), images, $"the 'images' of the manifests in {parts.Dir}"));
        CocoFiles.WriteResults(parts.Out, all);
    }

    static void MergeSegment(ShardParts parts, List<ShardManifest> manifests, List<string> done)
    {
        var images = ManifestImages(manifests);
        string what = $"the 'images' of the manifests in {parts.Dir}";
        var coarse = new Dictionary<long, List<CocoResult>>();
        var refined = new Dictionary<long, List<CocoResult>>();
        foreach (var item in done)
        {
            long id = long.Parse(item, System.Globalization.CultureInfo.InvariantCulture);
            coarse[id] = CocoFiles.ReadResults(parts.PathOf(item + ".coarse.json"), images, what);
            refined[id] = CocoFiles.ReadResults(parts.PathOf(item + ".refined.json"), images, what);
        }
        var all = Formats.CocoMetadataFiles.ReadImageInfo(parts.PathOf("images.json"));
        var ok = images.Images.Where(i => refined.ContainsKey(i.Id)).OrderBy(i => i.Id).ToList();
        Directory.CreateDirectory(parts.Out);
        Baseline.SegmentOutputs.Write(parts.Out, ok, all, coarse, refined, Baseline.SegmentRunInfo.Read(parts.PathOf("segment.json")));
    }

    static void MergePanoptic(ShardParts parts, List<string> done)
    {
        var ds = new PanopticDataset();
        using var stage = StagedOutput.Begin(parts.Out);
        string pngDir = stage.PathOf("panoptic");
        Directory.CreateDirectory(pngDir);
        foreach (var item in done.OrderBy(i => i, StringComparer.Ordinal))
        {
            string stem = Path.GetFileNameWithoutExtension(item);
            var one = PanopticFiles.ReadJson(parts.PathOf(stem + ".json"), groundTruth: false);
            if (one.Annotations.Count != 1 || one.Images.Count != 1) throw new DiffEggException($"{parts.PathOf(stem + ".json")}: a panoptic part holds one image and one annotation");
            ds.Images.Add(one.Images[0]);
            ds.Annotations.Add(one.Annotations[0]);
            if (ds.Categories.Count == 0) ds.Categories.AddRange(one.Categories);
            File.Copy(parts.PathOf(Path.Combine("panoptic", stem + ".png")), Path.Combine(pngDir, stem + ".png"));
        }
        PanopticFiles.WriteJson(stage.PathOf("panoptic.json"), ds);
        stage.Commit();
    }
}
