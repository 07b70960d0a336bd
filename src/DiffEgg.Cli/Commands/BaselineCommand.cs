using System.ComponentModel;
using DiffEgg.Baseline;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Formats;
using DiffEgg.Models;
using DiffEgg.Sharding;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary><c>diffegg baseline</c>: coarse instance masks for plain images (MaskCut or DiffCut on the UNet's features; <see cref="BaselineSegmenter"/>).</summary>
public sealed class BaselineCommand : Command<BaselineCommand.Settings>
{
    public sealed class Settings : CoarseMaskSettings
    {
        [CommandOption("--out <JSON>", isRequired: true)] [InputOutput] [Description("COCO results JSON of the coarse masks (category 1, score 1 − Ncut); without --image-info the image list is written beside it as <name>.images.json.")]
        public string Out { get; init; } = "";
        [CommandOption("--method <M>")] [DefaultValue("diffcut")] [Description("diffcut (recursive Ncut; default, measured better on the embedded model) or maskcut (N foreground cuts, CutLER).")]
        public string Method { get; init; } = "diffcut";

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            if (BaselineOptions.Parse(Method) is null) return ValidationResult.Error($"--method {Method}: use maskcut or diffcut");
            return base.Validate();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var entries = ImageSet.Resolve(s.Images, s.ImageInfo);
        OutputTarget.CheckFile(s.Out, "--out");
        var shard = ShardRun.Start(ShardLayout.Baseline, s, s.Out);
        var mine = shard.Select(entries);
        var todo = mine.Where(e => !shard.Skip(Key(e))).ToList();
        string modelDir = string.IsNullOrWhiteSpace(s.Model) ? EmbeddedModel.DefaultPath : s.Model;
        using var model = DiffusionModelFolder.Load(modelDir, TorchRuntime.ResolveDevice(s.Device));
        int native = model.Unet.Config.SampleSize * (model.Vae?.DownFactor ?? 1);
        BaselineSegmenter segmenter;
        segmenter = OptionFlags.Check(() => new BaselineSegmenter(model, s.ToOptions(native, BaselineOptions.Parse(s.Method)!.Value)), CoarseMaskSettings.Flags);
        using var _ = segmenter;
        Console.WriteLine($"baseline: {BaselineOptions.Name(segmenter.Options.Method)} on the output of {segmenter.LayerName} at t = {s.Timestep}, images processed at {segmenter.Options.Size} px (long side)");

        var output = new Dictionary<long, List<CocoResult>>();
        var failures = BatchRunner.Run("baseline", todo, e => e.Path, e =>
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var img = ImageIO.ReadRgb(e.Path);
            var results = segmenter.Segment(img, e.Image.Id);
            if (shard.UseParts) CocoFiles.WriteResults(shard.Parts.PathOf(Key(e) + ".json"), results);
            else output[e.Image.Id] = results;
        });
        string list = ImageSet.ListPathFor(s.Out);
        if (shard.UseParts)
        {
            if (string.IsNullOrWhiteSpace(s.ImageInfo)) ImageSet.Write(shard.Parts.PathOf("images.json"), entries.Select(e => e.Image));
            var failed = ShardFailures(failures, mine);
            return shard.Finish(mine.Select(Key).ToList(), todo.Count - failures.Count, mine.Count - todo.Count, failed, mine.Select(e => e.Image).ToList());
        }
        if (output.Count == 0)
        {
            CliOutput.Error($"{s.Out}: not written: all {entries.Count} image(s) failed{(File.Exists(s.Out) ? "; the existing file is left as it was" : "")}");
            return 1;
        }
        var all = entries.Where(e => output.ContainsKey(e.Image.Id)).SelectMany(e => output[e.Image.Id]).ToList();
        CocoFiles.WriteResults(s.Out, all);
        if (string.IsNullOrWhiteSpace(s.ImageInfo)) ImageSet.Write(list, entries.Select(e => e.Image));
        Console.WriteLine($"baseline: {all.Count} mask(s) for {output.Count} of {entries.Count} image(s) → {s.Out}{(string.IsNullOrWhiteSpace(s.ImageInfo) ? $" (image list: {list})" : "")}");
        if (failures.Count > 0) { CliOutput.Error($"{s.Out}: {failures.Count} of {entries.Count} image(s) failed and were left out"); return 1; }
        return 0;
    }

    static string Key(ImageEntry e) => e.Image.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The manifest entries of the images that failed (BatchRunner names them by path; the part key is the image id).</summary>
    internal static List<ShardFailure> ShardFailures(IEnumerable<(string Item, string Message)> failures, IReadOnlyList<ImageEntry> mine)
    {
        var byPath = mine.ToDictionary(e => e.Path, Key);
        return failures.Select(f => new ShardFailure(byPath.GetValueOrDefault(f.Item, f.Item), f.Item, f.Message)).ToList();
    }
}

/// <summary>Options shared by `baseline` and `segment`: the images, their ids, the model and the graph-cut settings.</summary>
public class CoarseMaskSettings : ShardSettings
{
    [CommandOption("--images <DIR>", isRequired: true)] [InputOutput] [Description("Folder of images (PNG, JPEG, BMP, WebP).")]
    public string Images { get; init; } = "";
    [CommandOption("--image-info <JSON>")] [InputOutput] [Description("Any COCO JSON whose 'images' give the ids (every image of --images needs an entry). Default: ids 1..n in file-name order.")]
    public string? ImageInfo { get; init; }
    [CommandOption("--model <DIR>")] [InputOutput] [Description("diffusers model folder. Default: the embedded model.")]
    public string Model { get; init; } = "";
    [CommandOption("--timestep <T>")] [DefaultValue(10)] [Description("Timestep of the single UNet pass whose features are cut.")]
    public int Timestep { get; init; } = 10;
    [CommandOption("--size <N>")] [Description("Long side of the processed image (as edges --size). Default: the model's native size (segment's one-step edges: the adapter's size, config.json 'size').")]
    public int? Size { get; init; }
    [CommandOption("--seed <S>")] [DefaultValue(0L)] [Description("Seed of the noise.")]
    public long Seed { get; init; }
    [CommandOption("--tau <T>")] [DefaultValue(0.15)] [Description("maskcut: cosine affinity threshold of the graph.")]
    public double Tau { get; init; } = 0.15;
    [CommandOption("--cuts <N>")] [DefaultValue(3)] [Description("maskcut: number of cuts (at most N masks per image).")]
    public int Cuts { get; init; } = 3;
    [CommandOption("--alpha <A>")] [DefaultValue(10.0)] [Description("diffcut: exponent of the min-max scaled cosine affinity.")]
    public double Alpha { get; init; } = 10;
    [CommandOption("--ncut-threshold <T>")] [DefaultValue(0.5)] [Description("diffcut: split a segment while its best Ncut is below this.")]
    public double NcutThreshold { get; init; } = 0.5;
    [CommandOption("--device <D>")] [DefaultValue("cpu")] [Description("cpu or cuda")]
    public string Device { get; init; } = "cpu";

    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(Images)) return ValidationResult.Error("--images: must not be empty");
        if (Size is < 8) return ValidationResult.Error($"--size {Size}: must be at least 8");
        try   // the library's own checks of the MaskCut / DiffCut options, reported by flag
        {
            new MaskCutOptions { Tau = Tau, Cuts = Cuts }.Validate();
            new DiffCutOptions { Alpha = Alpha, Threshold = NcutThreshold }.Validate();
        }
        catch (InvalidOptionException e) { return ValidationResult.Error(OptionFlags.Message(e, Flags)); }
        return ValidationResult.Success();
    }

    /// <summary>The flags whose names differ from the baseline options' (InvalidOptionException.Option → flag).</summary>
    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string> { ["Threshold"] = "--ncut-threshold" };

    /// <summary>The library options (the processing size resolved against the model).</summary>
    public BaselineOptions ToOptions(int nativeSize, BaselineMethod method) => new()
    {
        Method = method, Timestep = Timestep, Size = Size ?? nativeSize, Seed = Seed,
        MaskCut = new MaskCutOptions { Tau = Tau, Cuts = Cuts },
        DiffCut = new DiffCutOptions { Alpha = Alpha, Threshold = NcutThreshold },
    };
}
