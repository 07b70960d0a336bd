using System.ComponentModel;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Formats;
using DiffEgg.Refinement;
using DiffEgg.Sharding;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>`diffegg panoptic`: WPS panoptic pseudo-labels from semantic masks + edges (things split by edge seeds and RIP, stuff whole).</summary>
public sealed class PanopticCommand : Command<PanopticCommand.Settings>
{
    public sealed class Settings : RefineSettingsBase
    {
        [CommandOption("--semantic <DIR>", isRequired: true)] [InputOutput] [Description("Folder of class-id PNGs <stem>.png (value = category id, 255 = ignore).")] public string? Semantic { get; init; }
        [CommandOption("--categories <JSON>", isRequired: true)] [InputOutput] [Description("COCO-style categories (list, or object with 'categories') with id, name, isthing.")] public string? Categories { get; init; }
        [CommandOption("--image-info <JSON>")] [InputOutput] [Description("Optional COCO JSON whose 'images' give the image ids (default: 1, 2, ... in file-name order).")] public string? ImageInfo { get; init; }
        [CommandOption("--out <DIR>", isRequired: true)] [InputOutput] [Description("Output folder: panoptic.json and panoptic/<stem>.png, replaced together (no PNG of an earlier run is left), and only when at least one image succeeds.")] public string? Out { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Semantic)) return ValidationResult.Error("--semantic: must not be empty");
            if (string.IsNullOrWhiteSpace(Categories)) return ValidationResult.Error("--categories: must not be empty");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            return base.Validate();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var options = s.ToOptions();
        if (!Directory.Exists(s.Images)) throw new DiffEggException($"--images {s.Images}: no such folder");
        if (!Directory.Exists(s.Edges)) throw new DiffEggException($"--edges {s.Edges}: no such folder");
        if (!Directory.Exists(s.Semantic)) throw new DiffEggException($"--semantic {s.Semantic}: no such folder");
        OutputTarget.CheckFolder(s.Out!, "--out");
        var cats = CocoMetadataFiles.ReadCategories(s.Categories!);
        var isThing = cats.ToDictionary(c => (int)c.Id, c => c.IsThing == 1);
        var files = ImageIO.ListImages(s.Images!);
        if (files.Count == 0) throw new DiffEggException($"--images {s.Images}: no images found ({string.Join(", ", ImageIO.ImageExtensions)})");
        Dictionary<string, long>? ids = null;
        if (!string.IsNullOrWhiteSpace(s.ImageInfo))
            ids = CocoMetadataFiles.ReadImageInfo(s.ImageInfo).GroupBy(i => Path.GetFileName(i.FileName)).ToDictionary(g => g.Key, g => g.First().Id);
        long IdOf(string file) => ids is null ? IndexOf(files, file) + 1
            : ids.TryGetValue(Path.GetFileName(file), out long v) ? v : throw new DiffEggException($"{s.ImageInfo}: no entry in 'images' for {Path.GetFileName(file)}");
        var shard = ShardRun.Start(ShardLayout.Panoptic, s, s.Out!);
        if (shard.UseParts) return RunParts(s, options, shard, files, cats, isThing, IdOf, ids is not null);

        // panoptic.json and panoptic/ are written into a stage and replace the old ones together (StagedOutput.Commit)
        using var stage = StagedOutput.Begin(s.Out!);
        string pngDir = stage.PathOf("panoptic");
        Directory.CreateDirectory(pngDir);
        var done = new Dictionary<string, (CocoImage Image, PanopticAnnotation Ann)>();
        var notes = new List<string>();
        var failures = BatchRunner.Run("panoptic", files, file => file, file =>
        {
            done[file] = BuildOne(s, options, isThing, file, IdOf(file), pngDir, notes);
        });
        foreach (var n in notes) Console.Error.WriteLine(n);
        var ok = files.Where(done.ContainsKey).Select(f => done[f]).ToList();
        string json = Path.Combine(s.Out!, "panoptic.json");
        if (ok.Count == 0)
        {
            CliOutput.Error($"{s.Out}: not written: all {files.Count} image(s) failed; {json} and {Path.Combine(s.Out!, "panoptic")} are left as they were");
            return 1;
        }
        var ds = new PanopticDataset { Images = ok.Select(x => x.Image).ToList(), Annotations = ok.Select(x => x.Ann).ToList(), Categories = cats };
        PanopticFiles.WriteJson(stage.PathOf("panoptic.json"), ds);
        stage.Commit();
        Console.WriteLine($"wrote {ok.Count} of {files.Count} panoptic pseudo-labels → {json}, {Path.Combine(s.Out!, "panoptic")}");
        if (failures.Count > 0)
        {
            CliOutput.Error($"{json}: {failures.Count} of {files.Count} image(s) failed and were left out");
            return 1;
        }
        return 0;
    }

    static int IndexOf(IReadOnlyList<string> files, string file)
    {
        for (int i = 0; i < files.Count; i++) if (files[i] == file) return i;
        return -1;
    }

    /// <summary>The panoptic pseudo-label of one image: its PNG written as <paramref name="pngDir"/>/&lt;stem&gt;.png, its image entry and annotation.</summary>
    static (CocoImage Image, PanopticAnnotation Ann) BuildOne(Settings s, RefineOptions options, Dictionary<int, bool> isThing, string file, long id, string pngDir, List<string> notes)
    {
        string name = Path.GetFileName(file), stem = Path.GetFileNameWithoutExtension(file);
        var rgb = ImageIO.ReadRgb(file);
        string semPath = Path.Combine(s.Semantic!, stem + ".png");
        if (!File.Exists(semPath)) throw new DiffEggException($"{semPath}: semantic mask not found for {name}");
        var sem = PanopticFiles.ReadClassIdPng(semPath, out int w, out int h);
        if (w != rgb.Width || h != rgb.Height) throw new DiffEggException($"{semPath}: semantic mask is {w}x{h} but image {name} is {rgb.Width}x{rgb.Height}");
        var (edgePath, edges) = s.ReadEdges(stem);
        if (edges.Width != w || edges.Height != h)
            notes.Add($"note: {edgePath} is {edges.Width}x{edges.Height}, image {name} is {w}x{h}: edge map resized");
        PanopticResult result;
        try { result = PanopticBuilder.Build(sem, w, h, edges, isThing, options); }
        catch (DiffEggException e) { throw new DiffEggException($"{semPath}: {e.Message}", e); }
        string pngName = stem + ".png";
        PanopticFiles.WritePng(Path.Combine(pngDir, pngName), result.SegmentIds, w, h);
        return (new CocoImage(id, w, h, name), result.ToAnnotation(id, pngName));
    }

    /// <summary>
    /// Sharded or --resume run: this shard's images (every n-th by image id, or by file name without --image-info), each written as
    /// <c>OUT.parts/panoptic/&lt;stem&gt;.png</c> and then its one-image JSON <c>OUT.parts/&lt;stem&gt;.json</c> unless that exists; then the
    /// manifest. A --resume run that is not sharded assembles OUT at the end.
    /// </summary>
    static int RunParts(Settings s, RefineOptions options, ShardRun shard, IReadOnlyList<string> files, List<CocoCategory> cats,
        Dictionary<int, bool> isThing, Func<string, long> idOf, bool byId)
    {
        var order = byId ? files.OrderBy(idOf).ToList() : files.ToList();
        var mine = shard.Select(order);
        string pngDir = shard.Parts.PathOf("panoptic");
        Directory.CreateDirectory(pngDir);
        int done = 0, skipped = 0;
        var notes = new List<string>();
        var failures = BatchRunner.Run("panoptic", mine, file => file, file =>
        {
            string name = Path.GetFileName(file);
            if (shard.Skip(name)) { skipped++; return; }
            var (image, ann) = BuildOne(s, options, isThing, file, idOf(file), pngDir, notes);
            PanopticFiles.WriteJson(shard.Parts.PathOf(Path.GetFileNameWithoutExtension(file) + ".json"),
                new PanopticDataset { Images = { image }, Annotations = { ann }, Categories = cats });
            done++;
        });
        foreach (var n in notes) Console.Error.WriteLine(n);
        var failed = failures.Select(f => new ShardFailure(Path.GetFileName(f.Item), f.Item, f.Message)).ToList();
        return shard.Finish(mine.Select(f => Path.GetFileName(f)).ToList(), done, skipped, failed);
    }
}
