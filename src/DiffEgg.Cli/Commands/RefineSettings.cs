using System.ComponentModel;
using DiffEgg.Refinement;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>Options shared by `diffegg refine` and `diffegg panoptic` (Alg 4 parameters, edge-map conventions).</summary>
public class RefineSettingsBase : ShardSettings
{
    [CommandOption("--images <DIR>", isRequired: true)] [InputOutput] [Description("Folder of the images.")] public string? Images { get; init; }
    [CommandOption("--edges <DIR>", isRequired: true)] [InputOutput] [Description("Folder of edge maps as `diffegg edges` writes them (<stem>.edges.safetensors, <stem>.ternary.png) or <stem>.png; --edge-scale picks which.")] public string? Edges { get; init; }
    [CommandOption("--edge-format <F>")] [Description("How a PNG edge map is read: ternary (255 edge, 0 interior, 128 uncertain = --uncertain; other values are an error) or probability (v/255). Default: ternary for <stem>.ternary.png, probability for any other PNG.")] public string? EdgeFormat { get; init; }
    [CommandOption("--edge-scale <MODE>")] [Description("ternary: <stem>.ternary.png with --uncertain; soft: <stem>.edges.safetensors scaled by the thresholds of its ternary rule (Alg 2 made continuous; the rule `edges` recorded in the file); minmax: the same file min-max scaled. Each falls back to the other files.")] [DefaultValue("ternary")] public string EdgeScale { get; init; } = "ternary";
    [CommandOption("--radius <R>")] [Description("RIP affinity radius (working pixels).")] [DefaultValue(5)] public int Radius { get; init; } = 5;
    [CommandOption("--beta <B>")] [Description("RIP affinity exponent β.")] [DefaultValue(10.0)] public double Beta { get; init; } = 10;
    [CommandOption("--steps <T>")] [Description("RIP random-walk steps t.")] [DefaultValue(256)] public int Steps { get; init; } = 256;
    [CommandOption("--min-area <PX>")] [Description("Minimum component area in working-resolution pixels.")] [DefaultValue(16)] public int MinArea { get; init; } = 16;
    [CommandOption("--max-side <PX>")] [Description("Long side of the working resolution.")] [DefaultValue(128)] public int MaxSide { get; init; } = 128;
    [CommandOption("--edge-threshold <V>")] [Description("Edge value at or above which a pixel is an edge for CCL.")] [DefaultValue(0.5f)] public float EdgeThreshold { get; init; } = 0.5f;
    [CommandOption("--uncertain <V>")] [Description("Edge value given to 'uncertain' (128) pixels of a ternary PNG.")] [DefaultValue(EdgeMapReader.DefaultUncertain)] public float Uncertain { get; init; } = EdgeMapReader.DefaultUncertain;
    [CommandOption("--tolerance <EPS>")] [Description("RIP early stop: stop a map when 16 steps change no value by more than EPS × its maximum (0 = always all steps).")] [DefaultValue(1e-4f)] public float Tolerance { get; init; } = 1e-4f;
    [CommandOption("--min-keep <F>")] [Description("A refined mask keeping less than this fraction of its mask is a collapse: the mask is kept (0 = off).")] [DefaultValue(0.8)] public double MinKeep { get; init; } = 0.8;
    [CommandOption("--split-min-fraction <F>")] [Description("A region (or component) splits a mask only if it holds at least this fraction of the mask.")] [DefaultValue(0.15f)] public float SplitMinFraction { get; init; } = 0.15f;
    [CommandOption("--close-radius <R>")] [Description("With --no-competition: closing radius (working pixels) applied to refined masks (0 = off).")] [DefaultValue(1)] public int CloseRadius { get; init; } = 1;
    [CommandOption("--no-fill-holes")] [Description("Do not fill the holes of refined masks.")] public bool NoFillHoles { get; init; }
    [CommandOption("--connectivity <N>")] [Description("CCL connectivity, 4 or 8.")] [DefaultValue(8)] public int Connectivity { get; init; } = 8;
    [CommandOption("--gap-tolerance <PX>")] [Description("Region cores are distance-to-edge maxima standing this many working pixels above the saddle to a higher one, so edge gaps do not join regions (0 = the paper's CCL of the non-edge pixels).")] [DefaultValue(2)] public int GapTolerance { get; init; } = 2;
    [CommandOption("--min-edge-length <PX>")] [Description("Edge pieces shorter than this (working pixels, 8-connected) are clutter and ignored (0 = keep all).")] [DefaultValue(8)] public int MinEdgeLength { get; init; } = 8;
    [CommandOption("--region-vote <F>")] [Description("A region joins a mask when the mask covers at least this fraction of it.")] [DefaultValue(0.4f)] public float RegionVote { get; init; } = 0.4f;
    [CommandOption("--rescore <W>")] [Description("Re-score each mask by its edge agreement Q: score × (1 − W + W·Q) (0 = keep the input scores).")] [DefaultValue(0.5)] public double Rescore { get; init; } = 0.5;
    [CommandOption("--no-arbiter")] [Description("Take every proposed change, even where the edges do not support it (ablation).")] public bool NoArbiter { get; init; }
    [CommandOption("--no-competition")] [Description("Alg 4 read literally: propagate each mask alone from the CCL of the non-edge pixels (ablation).")] public bool NoCompetition { get; init; }

    /// <summary>The flags whose names differ from <see cref="RefineOptions"/>' properties in kebab case.</summary>
    static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string> { [nameof(RefineOptions.RescoreWeight)] = "--rescore" };

    public virtual RefineOptions ToOptions() => new()
    {
        Radius = Radius, Beta = Beta, Steps = Steps, MinArea = MinArea, MaxSide = MaxSide,
        EdgeThreshold = EdgeThreshold, Connectivity = Connectivity, Tolerance = Tolerance,
        MinKeep = MinKeep, SplitMinFraction = SplitMinFraction, CloseRadius = CloseRadius, FillHoles = !NoFillHoles,
        GapTolerance = GapTolerance, MinEdgeLength = MinEdgeLength, RegionVote = RegionVote, RescoreWeight = Rescore,
        Arbiter = !NoArbiter, Competition = !NoCompetition,
    };

    /// <summary>Finds and reads the edge map of <paramref name="stem"/> in --edges as --edge-scale says; throws <see cref="Common.DiffEggException"/> naming the folder when none exists.</summary>
    public (string Path, EdgeMap Map) ReadEdges(string stem) =>
        EdgeMapReader.Load(Edges!, stem, EdgeScale switch { "soft" => Refinement.EdgeScale.Soft, "minmax" => Refinement.EdgeScale.MinMax, _ => Refinement.EdgeScale.Ternary }, Uncertain,
            EdgeFormat switch { "ternary" => EdgePngFormat.Ternary, "probability" => EdgePngFormat.Probability, _ => null });

    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(Images)) return ValidationResult.Error("--images: must not be empty");
        if (string.IsNullOrWhiteSpace(Edges)) return ValidationResult.Error("--edges: must not be empty");
        if (EdgeScale is not ("soft" or "minmax" or "ternary")) return ValidationResult.Error($"--edge-scale {EdgeScale}: expected soft, minmax or ternary");
        if (EdgeFormat is not (null or "ternary" or "probability")) return ValidationResult.Error($"--edge-format {EdgeFormat}: expected ternary or probability");
        if (!(Uncertain >= 0 && Uncertain <= 1)) return ValidationResult.Error($"--uncertain {Uncertain}: must be in [0,1]");
        try { ToOptions().Validate(); }
        catch (Common.InvalidOptionException e) { return ValidationResult.Error(OptionFlags.Message(e, Flags)); }
        return ValidationResult.Success();
    }
}
