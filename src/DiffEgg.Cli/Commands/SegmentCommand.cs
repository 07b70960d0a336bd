using System.ComponentModel;
using System.Net;
using System.Text;
using DiffEgg.Baseline;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Demo;
using DiffEgg.Edges;
using DiffEgg.FineTuning;
using DiffEgg.Formats;
using DiffEgg.Models;
using DiffEgg.Refinement;
using DiffEgg.Sharding;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>
/// <c>diffegg segment</c>: from plain images to instance masks — coarse masks (the built-in baseline or the user's results) → edges
/// (one-step with an adapter, else PeakKL + EdgeKL) → refinement (Alg 4) → COCO results, the image list and an HTML page.
/// </summary>
public sealed class SegmentCommand : Command<SegmentCommand.Settings>
{
    public sealed class Settings : CoarseMaskSettings
    {
        [CommandOption("--out <DIR>", isRequired: true)] [InputOutput]
        [Description("Output folder: results.json (refined), baseline.json (coarse), images.json, edges/, overlays/, index.html.")]
        public string Out { get; init; } = "";
        [CommandOption("--baseline <B>")] [InputOutput] [DefaultValue("diffcut")]
        [Description("Coarse masks: diffcut or maskcut (computed here, options as `diffegg baseline`), or a COCO results JSON of another tool (its image ids as --image-info or the 1..n rule).")]
        public string Baseline { get; init; } = "diffcut";
        [CommandOption("--adapter <DIR>")] [InputOutput]
        [Description("Adapter folder for one-step edges. Default: the adapter shipped with the embedded model when the embedded model is used; else PeakKL + EdgeKL.")]
        public string? Adapter { get; init; }
        [CommandOption("--no-adapter")] [Description("Training-free edges (PeakKL + EdgeKL) even where an adapter is shipped.")]
        public bool NoAdapter { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            if (!string.IsNullOrWhiteSpace(Adapter) && NoAdapter) return ValidationResult.Error("--no-adapter: cannot be combined with --adapter");
            return base.Validate();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var entries = ImageSet.Resolve(s.Images, s.ImageInfo);
        OutputTarget.CheckFolder(s.Out, "--out");
        var method = BaselineOptions.Parse(s.Baseline);
        List<CocoResult>? given = null;
        if (method is null)
        {
            if (!File.Exists(s.Baseline)) throw new DiffEggException($"--baseline {s.Baseline}: neither maskcut, diffcut nor an existing results file");
            var gt = new CocoDataset { Images = entries.Select(e => e.Image).ToList() };
            given = CocoFiles.ReadResults(s.Baseline, gt, string.IsNullOrWhiteSpace(s.ImageInfo) ? $"the images of --images {s.Images} (ids 1..n in file-name order)" : $"the 'images' of --image-info {s.ImageInfo}");
        }
        string modelDir = string.IsNullOrWhiteSpace(s.Model) ? EmbeddedModel.DefaultPath : s.Model;
        string? adapterDir = s.NoAdapter ? null : !string.IsNullOrWhiteSpace(s.Adapter) ? s.Adapter : DemoCommand.ShippedAdapter(string.IsNullOrWhiteSpace(s.Model) ? null : s.Model);
        using var model = DiffusionModelFolder.Load(modelDir, TorchRuntime.ResolveDevice(s.Device));
        int native = model.Unet.Config.SampleSize * (model.Vae?.DownFactor ?? 1);
        using var adapter = adapterDir is null ? null : EdgeAdapter.Load(adapterDir, model.Unet);
        var edgeOptions = new EdgePipelineOptions { Size = s.Size ?? adapter?.Size ?? native, Seed = s.Seed };
        using var oneStep = adapter is null ? null : new OneStepEdgePipeline(model, adapter, edgeOptions);
        using var pseudo = adapter is null ? new EdgePipeline(model, edgeOptions) : null;
        BaselineSegmenter? segmenter = null;
        if (method is not null)
        {
            segmenter = OptionFlags.Check(() => new BaselineSegmenter(model, s.ToOptions(native, method.Value)), CoarseMaskSettings.Flags);
        }
        using var _ = segmenter;
        Console.WriteLine($"segment: {entries.Count} image(s); coarse masks: {(segmenter is null ? s.Baseline : $"{s.Baseline} on {segmenter.LayerName} at t = {s.Timestep}")}; " +
                          $"edges: {(adapter is null ? "PeakKL + EdgeKL" : $"one-step ({adapterDir})")}; refinement: Alg 4 defaults");

        var info = new SegmentRunInfo(segmenter is null ? s.Baseline : $"{s.Baseline} ({segmenter.LayerName}, t = {s.Timestep})",
            adapterDir is null ? "PeakKL + EdgeKL (training-free)" : "one-step, adapter " + Path.GetFileName(Path.TrimEndingDirectorySeparator(adapterDir)));
        var shard = ShardRun.Start(ShardLayout.Segment, s, s.Out);
        var mine = shard.Select(entries);
        var todo = mine.Where(e => !shard.Skip(Key(e))).ToList();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var byImage = given?.GroupBy(r => r.ImageId).ToDictionary(g => g.Key, g => g.ToList());
        var coarse = new Dictionary<long, List<CocoResult>>();
        var refined = new Dictionary<long, List<CocoResult>>();
        string edgeDir = Path.Combine(s.Out, "edges");
        var failures = BatchRunner.Run("segment", todo, e => e.Path, e =>
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var img = ImageIO.ReadRgb(e.Path);
            string stem = Path.GetFileNameWithoutExtension(e.Path);
            var masks = segmenter?.Segment(img, e.Image.Id) ?? byImage!.GetValueOrDefault(e.Image.Id) ?? new List<CocoResult>();
            EdgeMap edges;
            if (oneStep is not null)
            {
                using var r = oneStep.Run(img);
                oneStep.Write(r, edgeDir, stem, e.Path);
                edges = EdgeMapReader.FromTernary(r.Ternary, img.Width, img.Height);
            }
            else
            {
                using var r = pseudo!.Run(img);
                pseudo.Write(r, edgeDir, stem, e.Path);
                edges = EdgeMapReader.FromTernary(r.Ternary, img.Width, img.Height);
            }
            var result = CocoRefinement.RefineImage(e.Image, masks, edges);
            Directory.CreateDirectory(Path.Combine(s.Out, "overlays"));
            ImageIO.WriteRgbPng(SegmentOutputs.OverlayPath(s.Out, e.Image.FileName, "image"), img);
            ImageIO.WriteRgbPng(SegmentOutputs.OverlayPath(s.Out, e.Image.FileName, "before"), DemoImages.Overlay(img, masks.Select(m => m.Segmentation!.Rle!.Decode()).ToList()));
            ImageIO.WriteRgbPng(SegmentOutputs.OverlayPath(s.Out, e.Image.FileName, "after"), DemoImages.Overlay(img, result.Select(m => m.Segmentation!.Rle!.Decode()).ToList()));
            if (shard.UseParts)
            {
                // the refined part last: it marks the image done
                CocoFiles.WriteResults(shard.Parts.PathOf(Key(e) + ".coarse.json"), masks);
                CocoFiles.WriteResults(shard.Parts.PathOf(Key(e) + ".refined.json"), result);
            }
            coarse[e.Image.Id] = masks;
            refined[e.Image.Id] = result;
        });
        double sec = clock.Elapsed.TotalSeconds;
        long peak;
        using (var self = System.Diagnostics.Process.GetCurrentProcess()) peak = self.PeakWorkingSet64;
        Console.WriteLine($"segment: {todo.Count} image(s) in {sec:F1} s ({todo.Count / Math.Max(sec, 1e-9):F2} images/s after loading), peak memory {peak / 1048576.0:F0} MB");
        if (shard.UseParts)
        {
            ImageSet.Write(shard.Parts.PathOf("images.json"), entries.Select(e => e.Image));
            info.Write(shard.Parts.PathOf("segment.json"));
            var failed = BaselineCommand.ShardFailures(failures, mine);
            return shard.Finish(mine.Select(Key).ToList(), todo.Count - failures.Count, mine.Count - todo.Count, failed, mine.Select(e => e.Image).ToList());
        }
        if (refined.Count == 0)
        {
            CliOutput.Error($"{s.Out}: results not written: all {entries.Count} image(s) failed");
            return 1;
        }
        var ok = entries.Where(e => refined.ContainsKey(e.Image.Id)).Select(e => e.Image).ToList();
        SegmentOutputs.Write(s.Out, ok, entries.Select(e => e.Image).ToList(), coarse, refined, info);
        Console.WriteLine($"segment: {refined.Values.Sum(r => r.Count)} mask(s) for {ok.Count} of {entries.Count} image(s) (coarse: {coarse.Values.Sum(r => r.Count)}) → {Path.Combine(s.Out, "results.json")}, {Path.Combine(s.Out, "index.html")}");
        if (failures.Count > 0) { CliOutput.Error($"{s.Out}: {failures.Count} of {entries.Count} image(s) failed and were left out"); return 1; }
        return 0;
    }

    static string Key(ImageEntry e) => e.Image.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
