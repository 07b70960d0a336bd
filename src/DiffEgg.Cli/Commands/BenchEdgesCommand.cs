using System.ComponentModel;
using System.Globalization;
using DiffEgg.Common;
using DiffEgg.Edges;
using DiffEgg.Evaluation;
using DiffEgg.FineTuning;
using DiffEgg.Models;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>
/// `diffegg bench-edges`: scores edge methods on a synth folder (all boundaries and hard-pair boundaries): a Sobel baseline alone, or with
/// <c>--model</c> DiffEGG's EdgeKL variants (PeakKL and fixed timesteps × metrics) next to the Sobel baselines. Options only; the work is
/// <see cref="EdgeBenchmark"/>.
/// </summary>
public sealed class BenchEdgesCommand : Command<BenchEdgesCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--data <DIR>", isRequired: true)] [InputOutput] [Description("Folder written by `diffegg synth`.")] public string? Data { get; init; }
        [CommandOption("--model <DIR>")] [InputOutput] [Description("Diffusion model folder (pixel-space or diffusers): score DiffEGG edges (PeakKL and fixed timesteps × metrics) plus sobel and sobel-max baselines.")] public string? Model { get; init; }
        [CommandOption("--adapter <DIR>")] [InputOutput] [Description("With --model: also score the one-step edges of this adapter folder (from `diffegg finetune`) as the row 'DiffEGG one-step (adapter)'.")] public string? Adapter { get; init; }
        [CommandOption("--baseline <NAME>")] [DefaultValue("sobel")] [Description("Without --model: edge method sobel (grey) or sobel-max (per-channel max).")] public string Baseline { get; init; } = "sobel";
        [CommandOption("--blur <SIGMA>")] [Description("Gaussian blur σ before Sobel (0 = none); default 0 without --model, 1.5 with it.")] public double? Blur { get; init; }
        [CommandOption("--tolerance <PX>")] [DefaultValue(1)] [Description("Matching tolerance (Chebyshev, pixels of the compared resolution).")] public int Tolerance { get; init; } = 1;
        [CommandOption("--edge-size <PX>")] [DefaultValue(0)] [Description("Resample every edge map to this size before scoring; 0 = the attention grid with --model (e.g. 32 for a 64 px scene), else the image size.")] public int EdgeSize { get; init; }
        [CommandOption("--match <MODE>")] [DefaultValue("downsample-gt")] [Description("Different resolutions: downsample-gt (nearest GT at the edge map's pixel centres) or upsample-edges (bilinear edge map at GT size).")] public string Match { get; init; } = "downsample-gt";
        [CommandOption("--thin")] [Description("One-sided (1 px wide) GT boundaries: only the larger-id side of each contact.")] public bool Thin { get; init; }
        [CommandOption("--limit <N>")] [DefaultValue(0)] [Description("Score only the first N scenes (0 = all).")] public int Limit { get; init; }
        [CommandOption("--timesteps <LIST>")] [DefaultValue(EdgePipelineOptions.DefaultTimestepList)] [Description("With --model: decreasing timesteps scanned by PeakKL; 'none' = no PeakKL rows.")] public string Timesteps { get; init; } = EdgePipelineOptions.DefaultTimestepList;
        [CommandOption("--fixed-timesteps <LIST>")] [DefaultValue("10,50,100,200")] [Description("With --model: single timesteps scored without PeakKL; 'none' = no such rows.")] public string FixedTimesteps { get; init; } = "10,50,100,200";
        [CommandOption("--metrics <LIST>")] [DefaultValue("kl,jsd,l2,cos")] [Description("With --model: EdgeKL row divergences, any of kl,jsd,l2,cos.")] public string Metrics { get; init; } = "kl,jsd,l2,cos";
        [CommandOption("--seed <S>")] [DefaultValue(0L)] [Description("With --model: seed of the noise ε (the same ε at every timestep).")] public long Seed { get; init; }
        [CommandOption("--size <N>")] [DefaultValue(0)] [Description("With --model: long side of the processed image (0 = the scene's own size; the one-step row: the adapter's size, config.json 'size').")] public int Size { get; init; }
        [CommandOption("--device <D>")] [DefaultValue("cpu")] [Description("With --model: cpu or cuda.")] public string Device { get; init; } = "cpu";
        [CommandOption("--threads <N>")] [DefaultValue(0)] [Description("torch CPU threads (0 = libtorch's default).")] public int Threads { get; init; }
        [CommandOption("--ternary <LIST>")] [DefaultValue(TernaryRule.DefaultName)] [Description("Ternary rule(s) (Alg 2) whose edge and interior classes are scored: log-interior (the paper's edge test, the interior test on ln E), musigma (the paper's μ±σ), log (μ±σ of ln E), auto, quantile or quantile:LO,HI; several = one row per method and rule.")] public string Ternary { get; init; } = TernaryRule.DefaultName;
        [CommandOption("--json <FILE>")] [InputOutput] [Description("Also write the table as JSON.")] public string? Json { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data: must not be empty");
            if (Baseline != "sobel" && Baseline != "sobel-max") return ValidationResult.Error($"--baseline '{Baseline}': must be sobel or sobel-max");
            if (Blur is double b && (b < 0 || double.IsNaN(b))) return ValidationResult.Error($"--blur {b}: must be >= 0");
            if (Tolerance < 0) return ValidationResult.Error($"--tolerance {Tolerance}: must be >= 0");
            if (EdgeSize < 0) return ValidationResult.Error($"--edge-size {EdgeSize}: must be >= 0");
            if (Match != "downsample-gt" && Match != "upsample-edges") return ValidationResult.Error($"--match '{Match}': must be downsample-gt or upsample-edges");
            if (Limit < 0) return ValidationResult.Error($"--limit {Limit}: must be >= 0");
            if (Threads < 0) return ValidationResult.Error($"--threads {Threads}: must be >= 0");
            if (Size < 0) return ValidationResult.Error($"--size {Size}: must be >= 0");
            if (!string.IsNullOrWhiteSpace(Adapter) && string.IsNullOrWhiteSpace(Model)) return ValidationResult.Error("--adapter: needs --model (the model the adapter was trained for)");
            if (ParseList(Timesteps) is null) return ValidationResult.Error($"--timesteps '{Timesteps}': expected a comma-separated list of integers or 'none'");
            if (ParseList(FixedTimesteps) is null) return ValidationResult.Error($"--fixed-timesteps '{FixedTimesteps}': expected a comma-separated list of integers or 'none'");
            if (TernaryRule.TryParseList(Ternary) is null) return ValidationResult.Error($"--ternary '{Ternary}': expected a comma-separated list of {TernaryRule.Names} (each once)");
            if (ParseMetrics(Metrics) is null) return ValidationResult.Error($"--metrics '{Metrics}': expected a comma-separated list of kl, jsd, l2, cos");
            return ValidationResult.Success();
        }
    }

    internal static int[]? ParseList(string s)
    {
        if (s.Trim().Equals("none", StringComparison.OrdinalIgnoreCase)) return Array.Empty<int>();
        var parts = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var r = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out r[i])) return null;
        return r.Length == 0 ? null : r;
    }

    internal static EdgeMetric[]? ParseMetrics(string s)
    {
        var parts = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var r = new List<EdgeMetric>();
        foreach (var p in parts)
        {
            if (EdgesCommand.ParseMetric(p) is not { } m) return null;
            if (!r.Contains(m)) r.Add(m);
        }
        return r.Count == 0 ? null : r.ToArray();
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        if (s.Json is not null) OutputTarget.CheckFile(s.Json, "--json");
        TorchRuntime.EnsureLoaded();
        if (s.Threads > 0) TorchSharp.torch.set_num_threads(s.Threads);
        var items = EdgeBenchmark.Load(s.Data!);
        if (s.Limit > 0) items = items.Take(s.Limit).ToList();
        var quality = new EdgeQualityOptions
        {
            Tolerance = s.Tolerance,
            ThinBoundary = s.Thin,
            Match = s.Match == "upsample-edges" ? EdgeResolutionMatch.UpsampleEdgeMap : EdgeResolutionMatch.DownsampleGroundTruth,
        };
        bool withModel = !string.IsNullOrWhiteSpace(s.Model);
        double blur = s.Blur ?? (withModel ? 1.5 : 0);
        var options = new EdgeBenchmarkOptions
        {
            Timesteps = ParseList(s.Timesteps)!,
            FixedTimesteps = ParseList(s.FixedTimesteps)!,
            Metrics = ParseMetrics(s.Metrics)!,
            Sobel = withModel
                ? new[] { new SobelVariant(SobelChannels.Grey, blur), new SobelVariant(SobelChannels.MaxChannel, blur) }
                : new[] { new SobelVariant(s.Baseline == "sobel-max" ? SobelChannels.MaxChannel : SobelChannels.Grey, blur) },
            Seed = s.Seed,
            Size = s.Size,
            EdgeSize = s.EdgeSize,
            Quality = quality,
            Rules = TernaryRule.TryParseList(s.Ternary)!,
        };

        DiffusionModelFolder? model = withModel ? DiffusionModelFolder.Load(s.Model!, TorchRuntime.ResolveDevice(s.Device)) : null;
        EdgeAdapter? adapter = null;
        OneStepEdgePipeline? oneStep = null;
        EdgeBenchmarkReport report;
        var failed = new List<(string Name, string Error)>();
        try
        {
            if (model is not null && !string.IsNullOrWhiteSpace(s.Adapter))
            {
                adapter = EdgeAdapter.Load(s.Adapter!, model.Unet);
                oneStep = OptionFlags.Check(() => new OneStepEdgePipeline(model, adapter, new EdgePipelineOptions { Seed = s.Seed, Size = s.Size > 0 ? s.Size : adapter.Size ?? 0 }));
            }
            report = null!;
            AnsiConsole.Progress().Start(ctx =>
            {
                var task = ctx.AddTask("bench-edges", maxValue: items.Count);
                void Progress(string name, string? error)
                {
                    if (error is not null) failed.Add((name, error));
                    task.Increment(1);
                }
                // EdgePipeline's constructor checks the timesteps against the model's schedule (InvalidOptionException: a flag of this command)
                report = OptionFlags.Check(() => model is null ? EdgeBenchmark.RunSobel(items, options, Progress) : EdgeBenchmark.RunDiffEgg(model, items, options, Progress, oneStep),
                    new Dictionary<string, string> { ["FixedTimestep"] = "--fixed-timesteps" });   // EdgePipeline's name for one of them
            });
        }
        finally
        {
            oneStep?.Dispose();
            adapter?.Dispose();
            model?.Dispose();
        }
        foreach (var (name, error) in failed) CliOutput.Failure(name, error);
        if (report.Scenes > 0 && report.Failed.Count == report.Scenes)
        {
            CliOutput.Error($"{s.Data}: all {report.Scenes} scenes failed; nothing to score{(s.Json is null ? "" : $", {s.Json} not written")}");
            return 1;
        }

        string F(double v) => double.IsNaN(v) ? "-" : v.ToString("0.000", CultureInfo.InvariantCulture);
        Console.WriteLine("| method | images | all P | all R | all F1 | all AUC | hard images | hard P | hard R | hard F1 | hard AUC | int P | int R | bnd→int | run |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in report.Rows)
        {
            var m = r.Summary;
            Console.WriteLine($"| {r.Method} | {m.Images} | {F(m.Precision)} | {F(m.Recall)} | {F(m.F1)} | {F(m.Auc)} | {m.HardImages} | {F(m.HardPrecision)} | {F(m.HardRecall)} | {F(m.HardF1)} | {F(m.HardAuc)} | {F(m.InteriorPrecision)} | {F(m.InteriorRecall)} | {F(m.BoundaryAsInterior)} | {F(m.LargestRun)} |");
        }
        string rules = string.Join(", ", options.Rules.Select(r => r.Name));
        Console.WriteLine($"scored at {report.Resolution}, {(s.Thin ? "one-sided" : "two-sided")} GT boundaries, tolerance {s.Tolerance} px (Chebyshev), edge = above the upper threshold of ternary rule {rules} per image; P/R pooled over pixels, AUC mean over images; int P/R = interior class vs pixels farther than the tolerance from every boundary, bnd→int = GT boundary pixels called interior; run = gap measure: share of the objects' boundary length covered by the largest 8-connected edge run around each object (docs/edge-quality.md)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{report.Scenes - report.Failed.Count} scenes in {report.Seconds:F1} s ({report.Seconds / Math.Max(1, report.Scenes):F3} s per scene; model loading not included)"));
        if (report.ChosenTimesteps.Count > 0)
            Console.WriteLine("PeakKL chosen timestep (scenes): " + string.Join(", ", report.ChosenTimesteps.Select(kv => $"t={kv.Key}: {kv.Value}")));
        if (s.Json is not null)
        {
            var settings = new Dictionary<string, string>
            {
                ["data"] = s.Data!,
                ["model"] = s.Model ?? "",
                ["adapter"] = s.Adapter ?? "",
                ["timesteps"] = withModel ? string.Join(",", options.Timesteps) : "",
                ["fixed_timesteps"] = withModel ? string.Join(",", options.FixedTimesteps) : "",
                ["metrics"] = withModel ? string.Join(",", options.Metrics.Select(EdgeBenchmark.MetricName)) : "",
                ["seed"] = s.Seed.ToString(CultureInfo.InvariantCulture),
                ["size"] = s.Size.ToString(CultureInfo.InvariantCulture),
                ["blur"] = blur.ToString(CultureInfo.InvariantCulture),
                ["tolerance"] = s.Tolerance.ToString(CultureInfo.InvariantCulture),
                ["edge_size"] = s.EdgeSize.ToString(CultureInfo.InvariantCulture),
                ["match"] = s.Match,
                ["boundary"] = s.Thin ? "one-sided" : "two-sided",
                ["limit"] = s.Limit.ToString(CultureInfo.InvariantCulture),
                ["ternary"] = rules,
                ["threads"] = s.Threads.ToString(CultureInfo.InvariantCulture),
            };
            EdgeBenchmark.WriteJson(s.Json, report, settings);
        }
        if (report.Failed.Count > 0)
        {
            CliOutput.Error($"{s.Data}: {report.Failed.Count} of {report.Scenes} scenes failed: {string.Join(", ", report.Failed.Take(10).Select(f => f.Name))}");
            return 1;
        }
        return 0;
    }
}
