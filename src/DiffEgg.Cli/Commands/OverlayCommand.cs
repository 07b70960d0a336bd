using System.ComponentModel;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Demo;
using DiffEgg.Formats;
using DiffEgg.Refinement;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>`diffegg overlay`: one PNG per image with its instance masks tinted and outlined (<see cref="DemoImages.Overlay"/>), to look at masks without ground truth.</summary>
public sealed class OverlayCommand : Command<OverlayCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--images <DIR>", isRequired: true)] [InputOutput] [Description("Folder of the images.")] public string? Images { get; init; }
        [CommandOption("--masks <JSON>", isRequired: true)] [InputOutput] [Description("COCO results JSON with the instance masks to draw (e.g. the input or the output of `diffegg refine`).")] public string? Masks { get; init; }
        [CommandOption("--image-info <JSON>", isRequired: true)] [InputOutput] [Description("Any COCO JSON whose 'images' list maps ids to file_name, height, width (only 'images' is read).")] public string? ImageInfo { get; init; }
        [CommandOption("--out <DIR>", isRequired: true)] [InputOutput] [Description("Output folder: <stem>.overlay.png for every image with at least one result (written atomically, each image on its own).")] public string? Out { get; init; }
        [CommandOption("--score-threshold <S>")] [Description("Draw only masks with score ≥ S (refine keeps the original of a split mask at half its score: a threshold hides it).")] [DefaultValue(0.0)] public double ScoreThreshold { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Images)) return ValidationResult.Error("--images: must not be empty");
            if (string.IsNullOrWhiteSpace(Masks)) return ValidationResult.Error("--masks: must not be empty");
            if (string.IsNullOrWhiteSpace(ImageInfo)) return ValidationResult.Error("--image-info: must not be empty");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            if (!double.IsFinite(ScoreThreshold)) return ValidationResult.Error($"--score-threshold {ScoreThreshold}: must be a finite number");
            return ValidationResult.Success();
        }
    }

    /// <summary>The overlay file name of an image: <c>&lt;stem&gt;.overlay.png</c> (never <c>&lt;stem&gt;.png</c>, which `refine` would read as an edge map).</summary>
    public static string OutputName(string imageFileName) => Path.GetFileNameWithoutExtension(imageFileName) + ".overlay.png";

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(s.Images)) throw new DiffEggException($"{s.Images}: --images: no such folder");
        OutputTarget.CheckFolder(s.Out!, "--out");
        var info = new CocoDataset { Images = CocoMetadataFiles.ReadImageInfo(s.ImageInfo!) };
        var results = CocoFiles.ReadResults(s.Masks!, info, $"the 'images' of --image-info {s.ImageInfo}");
        var byImage = results.GroupBy(r => r.ImageId).Select(g => (Image: info.FindImage(g.Key)!, Results: g.ToList())).ToList();
        // two images with one file stem would write one overlay file
        foreach (var clash in byImage.GroupBy(x => OutputName(x.Image.FileName)).Where(g => g.Count() > 1))
            throw new DiffEggException($"{s.ImageInfo}: images {string.Join(", ", clash.Select(x => x.Image.Id))} would all be drawn to {clash.Key}; give them different file names");
        int written = 0, drawn = 0, below = 0, boxOnly = 0;
        var failures = BatchRunner.Run("overlay", byImage, x => Path.Combine(s.Images!, x.Image.FileName), x =>
        {
            var img = x.Image;
            string path = Path.Combine(s.Images!, img.FileName);
            if (!File.Exists(path)) throw new DiffEggException($"{path}: image file not found in --images (masks refer to image id {img.Id})");
            var rgb = ImageIO.ReadRgb(path);
            if (rgb.Width != img.Width || rgb.Height != img.Height)
                throw new DiffEggException($"{path}: image is {rgb.Width}x{rgb.Height} but --image-info says {img.Width}x{img.Height}");
            // lowest score first, so the best mask is drawn on top (colours follow the drawing order)
            var shown = x.Results.Where(r => r.Segmentation is not null && r.Score >= s.ScoreThreshold)
                .Select((r, i) => (r, i)).OrderByDescending(t => t.r.Score).ThenBy(t => t.i).Select(t => t.r).ToList();
            var masks = shown.Select(r => r.Segmentation!.ToRle(img.Height, img.Width).Decode()).ToList();
            masks.Reverse();
            ImageIO.WriteRgbPng(Path.Combine(s.Out!, OutputName(img.FileName)), DemoImages.Overlay(rgb, masks));
            written++;
            drawn += masks.Count;
            below += x.Results.Count(r => r.Segmentation is not null && r.Score < s.ScoreThreshold);
            boxOnly += x.Results.Count(r => r.Segmentation is null);
        }, x => $"image id {x.Image.Id}");
        if (boxOnly > 0) CliOutput.Note(s.Masks!, $"{boxOnly} box-only result(s) have no mask and are not drawn");
        if (byImage.Count > 0 && written == 0)
        {
            CliOutput.Error($"{s.Out}: nothing written: all {byImage.Count} image(s) failed");
            return 1;
        }
        Console.WriteLine($"overlay: {written} of {byImage.Count} image(s) written to {s.Out} ({drawn} masks drawn{(below > 0 ? $", {below} below --score-threshold {s.ScoreThreshold} left out" : "")})");
        if (failures.Count > 0)
        {
            CliOutput.Error($"{s.Out}: {failures.Count} of {byImage.Count} image(s) failed and were left out");
            return 1;
        }
        return 0;
    }
}
