using System.ComponentModel;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Formats;
using DiffEgg.Refinement;
using DiffEgg.Sharding;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>`diffegg refine`: UIS refinement of COCO instance results with edges (Alg 4: CCL split, RIP, IoU merge).</summary>
public sealed class RefineCommand : Command<RefineCommand.Settings>
{
    public sealed class Settings : RefineSettingsBase
    {
        [CommandOption("--image-info <JSON>", isRequired: true)] [InputOutput] [Description("Any COCO JSON whose 'images' list maps ids to file_name, height, width (only 'images' is read).")] public string? ImageInfo { get; init; }
        [CommandOption("--masks <JSON>", isRequired: true)] [InputOutput] [Description("COCO results JSON with the instance masks to refine.")] public string? Masks { get; init; }
        [CommandOption("--out <JSON>", isRequired: true)] [InputOutput] [Description("Refined COCO results JSON (written atomically, and only when at least one image is refined).")] public string? Out { get; init; }
        [CommandOption("--merge-iou <IOU>")] [Description("Merge same-category masks with IoU above this.")] [DefaultValue(0.5)] public double MergeIoU { get; init; } = 0.5;

        public override RefineOptions ToOptions() => base.ToOptions() with { MergeIoU = MergeIoU };

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(ImageInfo)) return ValidationResult.Error("--image-info: must not be empty");
            if (string.IsNullOrWhiteSpace(Masks)) return ValidationResult.Error("--masks: must not be empty");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            return base.Validate();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var options = s.ToOptions();
        if (!Directory.Exists(s.Images)) throw new DiffEggException($"--images {s.Images}: no such folder");
        if (!Directory.Exists(s.Edges)) throw new DiffEggException($"--edges {s.Edges}: no such folder");
        OutputTarget.CheckFile(s.Out!, "--out");
        var gt = new CocoDataset { Images = CocoMetadataFiles.ReadImageInfo(s.ImageInfo!) };
        var results = CocoFiles.ReadResults(s.Masks!, gt, $"the 'images' of --image-info {s.ImageInfo}");
        // images in id order: the order of the written results and of the shard assignment
        var byImage = results.GroupBy(r => r.ImageId).OrderBy(g => g.Key).Select(g => (Image: gt.FindImage(g.Key)!, Results: g.ToList())).ToList();
        var shard = ShardRun.Start(ShardLayout.Refine, s, s.Out!);
        if (shard.UseParts) return RunParts(s, options, shard, byImage);
        var output = new Dictionary<long, List<CocoResult>>();
        var notes = new List<string>();
        var failures = BatchRunner.Run("refine", byImage, x => Path.Combine(s.Images!, x.Image.FileName), x =>
        {
            output[x.Image.Id] = RefineImage(s, options, x.Image, x.Results, notes);
        }, x => $"image id {x.Image.Id}");
        foreach (var n in notes) Console.Error.WriteLine(n);
        if (byImage.Count > 0 && output.Count == 0)
        {
            CliOutput.Error($"{s.Out}: not written: all {byImage.Count} image(s) failed{(File.Exists(s.Out) ? "; the existing file is left as it was" : "")}");
            return 1;
        }
        var all = byImage.Where(x => output.ContainsKey(x.Image.Id)).SelectMany(x => output[x.Image.Id]).ToList();
        CocoFiles.WriteResults(s.Out!, all);
        Console.WriteLine($"refined {output.Count} of {byImage.Count} images: {results.Count} masks in, {all.Count} out → {s.Out}");
        if (failures.Count > 0)
        {
            CliOutput.Error($"{s.Out}: {failures.Count} of {byImage.Count} image(s) failed and were left out");
            return 1;
        }
        return 0;
    }

    /// <summary>
    /// Sharded or --resume run: this shard's images (every n-th in id order), each refined into its part <c>OUT.parts/&lt;image id&gt;.json</c>
    /// unless that exists; then the manifest. A --resume run that is not sharded assembles OUT at the end.
    /// </summary>
    static int RunParts(Settings s, RefineOptions options, ShardRun shard, List<(CocoImage Image, List<CocoResult> Results)> byImage)
    {
        var mine = shard.Select(byImage);
        static string Key(CocoImage im) => im.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        int done = 0, skipped = 0;
        var notes = new List<string>();
        var failures = BatchRunner.Run("refine", mine, x => Path.Combine(s.Images!, x.Image.FileName), x =>
        {
            string key = Key(x.Image);
            if (shard.Skip(key)) { skipped++; return; }
            var refined = RefineImage(s, options, x.Image, x.Results, notes);
            CocoFiles.WriteResults(shard.Parts.PathOf(key + ".json"), refined);
            done++;
        }, x => $"image id {x.Image.Id}");
        foreach (var n in notes) Console.Error.WriteLine(n);
        var byPath = mine.ToDictionary(x => Path.Combine(s.Images!, x.Image.FileName), x => Key(x.Image));
        var failed = failures.Select(f => new ShardFailure(byPath.GetValueOrDefault(f.Item, f.Item), f.Item, f.Message)).ToList();
        return shard.Finish(mine.Select(x => Key(x.Image)).ToList(), done, skipped, failed, mine.Select(x => x.Image).ToList());
    }

    static List<CocoResult> RefineImage(Settings s, RefineOptions options, CocoImage img, List<CocoResult> results, List<string> notes)
    {
        string imagePath = Path.Combine(s.Images!, img.FileName);
        if (!File.Exists(imagePath)) throw new DiffEggException($"{imagePath}: image file not found in --images (masks refer to image id {img.Id})");
        var (width, height) = ImageIO.ReadSize(imagePath);
        if (width != img.Width || height != img.Height)
            throw new DiffEggException($"{imagePath}: image is {width}x{height} but --image-info says {img.Width}x{img.Height}");
        var (edgePath, edges) = s.ReadEdges(Path.GetFileNameWithoutExtension(img.FileName));
        if (edges.Width != img.Width || edges.Height != img.Height)
            notes.Add($"note: {edgePath} is {edges.Width}x{edges.Height}, image {img.FileName} is {img.Width}x{img.Height}: edge map resized");
        return CocoRefinement.RefineImage(img, results, edges, options);
    }
}
