using System.ComponentModel;
using System.Globalization;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.Evaluation;
using DiffEgg.Formats;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>`diffegg bench-edges`: scores an edge method on a synth folder (all boundaries and hard-pair boundaries).</summary>
public sealed class BenchEdgesCommand : Command<BenchEdgesCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--data <DIR>")] [Description("Folder written by `diffegg synth`.")] public string? Data { get; init; }
        [CommandOption("--baseline <NAME>")] [Description("Edge method: sobel (grey) or sobel-max (per-channel max).")] public string Baseline { get; init; } = "sobel";
        [CommandOption("--blur <SIGMA>")] [Description("Gaussian blur σ before Sobel (0 = none).")] public double Blur { get; init; }
        [CommandOption("--tolerance <PX>")] [Description("Matching tolerance (Chebyshev, pixels of the compared resolution).")] public int Tolerance { get; init; } = 1;
        [CommandOption("--edge-size <PX>")] [Description("Resample the edge map to this size before scoring (e.g. 32 = attention resolution); 0 = image size.")] public int EdgeSize { get; init; }
        [CommandOption("--match <MODE>")] [Description("Different resolutions: downsample-gt (nearest GT at the edge map's pixel centres) or upsample-edges (bilinear edge map at GT size).")] public string Match { get; init; } = "downsample-gt";
        [CommandOption("--limit <N>")] [Description("Score only the first N scenes (0 = all).")] public int Limit { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data DIR is required");
            if (Baseline != "sobel" && Baseline != "sobel-max") return ValidationResult.Error($"--baseline '{Baseline}' must be sobel or sobel-max");
            if (Blur < 0 || double.IsNaN(Blur)) return ValidationResult.Error($"--blur {Blur} must be >= 0");
            if (Tolerance < 0) return ValidationResult.Error($"--tolerance {Tolerance} must be >= 0");
            if (EdgeSize < 0) return ValidationResult.Error($"--edge-size {EdgeSize} must be >= 0");
            if (Match != "downsample-gt" && Match != "upsample-edges") return ValidationResult.Error($"--match '{Match}' must be downsample-gt or upsample-edges");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var items = EdgeBenchmark.Load(s.Data!);
        if (s.Limit > 0) items = items.Take(s.Limit).ToList();
        var opts = new EdgeQualityOptions
        {
            Tolerance = s.Tolerance,
            Match = s.Match == "upsample-edges" ? EdgeResolutionMatch.UpsampleEdgeMap : EdgeResolutionMatch.DownsampleGroundTruth,
        };
        var channels = s.Baseline == "sobel-max" ? SobelChannels.MaxChannel : SobelChannels.Grey;
        var scores = new List<EdgeScores>();
        var failed = new List<string>();
        AnsiConsole.Progress().Start(ctx =>
        {
            var task = ctx.AddTask("bench-edges", maxValue: items.Count);
            foreach (var it in items)
            {
                try
                {
                    var img = ImageIO.ReadRgb(it.ImagePath);
                    var ids = PanopticFiles.ReadPng(it.PanopticPath, out int gw, out int gh);
                    var map = SobelEdges.Compute(img, s.Blur, channels);
                    int eh = img.Height, ew = img.Width;
                    if (s.EdgeSize > 0 && (s.EdgeSize != eh || s.EdgeSize != ew))
                    {
                        map = EdgeQuality.ResampleBilinear(map, eh, ew, s.EdgeSize, s.EdgeSize);
                        eh = ew = s.EdgeSize;
                    }
                    scores.Add(EdgeQuality.Score(map, eh, ew, ids, gh, gw, it.HardPairs, opts));
                }
                catch (Exception e) when (e is Common.DiffEggException or ArgumentException or IOException)
                {
                    failed.Add(it.Name);
                    AnsiConsole.MarkupLineInterpolated($"[red]{it.Name}: {e.Message}[/]");
                }
                task.Increment(1);
            }
        });
        var sum = EdgeQuality.Aggregate(scores);
        string F(double v) => double.IsNaN(v) ? "-" : v.ToString("0.000", CultureInfo.InvariantCulture);
        var method = $"{s.Baseline}{(s.Blur > 0 ? $", blur σ {s.Blur.ToString(CultureInfo.InvariantCulture)}" : "")}";
        var res = scores.Count > 0 ? $"{scores[0].Height}x{scores[0].Width}" : "-";
        Console.WriteLine("| method | images | all P | all R | all F1 | all AUC | hard images | hard P | hard R | hard F1 | hard AUC |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {method} | {sum.Images} | {F(sum.Precision)} | {F(sum.Recall)} | {F(sum.F1)} | {F(sum.Auc)} | {sum.HardImages} | {F(sum.HardPrecision)} | {F(sum.HardRecall)} | {F(sum.HardF1)} | {F(sum.HardAuc)} |");
        Console.WriteLine($"scored at {res}, tolerance {s.Tolerance} px (Chebyshev), threshold μ+σ per image; P/R pooled over pixels, AUC mean over images");
        if (failed.Count > 0)
        {
            Console.Error.WriteLine($"error: {failed.Count} of {items.Count} scenes failed: {string.Join(", ", failed.Take(10))}");
            return 1;
        }
        return 0;
    }
}
