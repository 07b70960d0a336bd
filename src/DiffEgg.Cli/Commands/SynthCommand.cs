using System.ComponentModel;
using DiffEgg.Common;
using DiffEgg.Data.Synthetic;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>`diffegg synth`: writes a folder of synthetic touching-objects scenes with COCO instances/panoptic ground truth.</summary>
public sealed class SynthCommand : Command<SynthCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--count <N>")] [DefaultValue(100)] [Description("Number of scenes.")] public int Count { get; init; } = 100;
        [CommandOption("--size <PX>")] [DefaultValue(64)] [Description("Scene width = height in pixels.")] public int Size { get; init; } = 64;
        [CommandOption("--seed <S>")] [DefaultValue(0L)] [Description("Dataset seed.")] public long Seed { get; init; }
        [CommandOption("--split <SPLIT>")] [DefaultValue("train")] [Description("train (scene numbers 0..) or test (1,000,000..).")] public string Split { get; init; } = "train";
        [CommandOption("--start <I>")] [DefaultValue(0)] [Description("First scene index within the split.")] public int Start { get; init; }
        [CommandOption("--out <DIR>", isRequired: true)] [InputOutput] [Description("Output folder (images/, instances.json, panoptic.json, panoptic/, hard_pairs.json).")] public string? Out { get; init; }
        [CommandOption("--antialias")] [Description("4x4 supersampled colours (ground truth stays pixel-exact at pixel centres).")] public bool Antialias { get; init; }
        [CommandOption("--hard-prob <P>")] [DefaultValue(0.6)] [Description("Probability of a designed hard pair per scene.")] public double HardProb { get; init; } = 0.6;
        [CommandOption("--style <STYLE>")] [DefaultValue("default")] [Description("default (textured shapes on textured background regions) or stress (a second generator for held-out measurements: touching wobbly ellipses with ring/shaded/marble/grain textures on a gradient background; docs/edge-quality.md). --antialias applies to the default style only.")] public string Style { get; init; } = "default";

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            if (Count <= 0) return ValidationResult.Error($"--count {Count}: must be positive");
            if (Split != "train" && Split != "test") return ValidationResult.Error($"--split '{Split}': must be train or test");
            if (Style != "default" && Style != "stress") return ValidationResult.Error($"--style '{Style}': must be default or stress");
            if (Style == "stress" && (Size < 48 || Size > 1024)) return ValidationResult.Error($"--size {Size}: the stress style needs 48..1024");
            if (Style == "stress" && Antialias) return ValidationResult.Error("--antialias: not available with --style stress");
            if (!(HardProb >= 0 && HardProb <= 1)) return ValidationResult.Error($"--hard-prob {HardProb}: must be in [0, 1]");
            if (Start < 0 || (long)Start + Count > SceneGenerator.SplitStride) return ValidationResult.Error($"--start {Start} + --count {Count} must stay within 0..{SceneGenerator.SplitStride}");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        OutputTarget.CheckFolder(s.Out!, "--out");
        var split = s.Split == "test" ? SyntheticSplit.Test : SyntheticSplit.Train;
        var options = new SceneOptions { Size = s.Size, Antialias = s.Antialias, HardPairProbability = s.HardProb };
        SyntheticDatasetWriter.Summary? summary = null;
        AnsiConsole.Progress().Start(ctx =>
        {
            var task = ctx.AddTask($"synth {s.Split}{(s.Style == "stress" ? " (stress style)" : "")}", maxValue: s.Count);
            summary = s.Style == "stress"
                ? SyntheticDatasetWriter.Write(s.Out!, options, s.Seed, split, s.Start, s.Count,
                    index => DiffEgg.Data.Stress.StressSceneRenderer.Generate(s.Seed, split, index, s.Size, s.HardProb), done => task.Value = done)
                : SyntheticDatasetWriter.Write(s.Out!, options, s.Seed, split, s.Start, s.Count, done => task.Value = done);
        });
        if (summary!.Scenes == 0) { foreach (var f in summary.Failed.Take(3)) CliOutput.Error(f); CliOutput.Error($"{s.Out}: no scene could be written; instances.json, panoptic.json and hard_pairs.json are left as they were"); return 1; }
        Console.WriteLine($"wrote {summary.Scenes} scenes to {s.Out}: {summary.Instances} instances, {summary.ScenesWithHardPair} scenes with a hard pair ({100.0 * summary.ScenesWithHardPair / summary.Scenes:F1}%), {summary.HardPairs} hard pairs");
        foreach (var f in summary.Failed) CliOutput.Error(f);
        if (summary.Failed.Count > 0)
        {
            CliOutput.Error($"{s.Out}: {summary.Failed.Count} of {s.Count} scenes could not be written");
            return 1;
        }
        return 0;
    }
}
