using System.ComponentModel;
using DiffEgg.Refinement;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>Options shared by `diffegg refine` and `diffegg panoptic` (Alg 4 parameters, edge-map conventions).</summary>
public class RefineSettingsBase : CommandSettings
{
    [CommandOption("--images <DIR>")] [Description("Folder of the images.")] public string? Images { get; init; }
    [CommandOption("--edges <DIR>")] [Description("Folder of edge maps as `diffegg edges` writes them (<stem>.edges.safetensors, <stem>.ternary.png) or <stem>.png; --edge-scale picks which.")] public string? Edges { get; init; }
    [CommandOption("--edge-scale <MODE>")] [Description("ternary: <stem>.ternary.png with --uncertain; soft: <stem>.edges.safetensors scaled by the thresholds of its ternary rule (Alg 2 made continuous; the rule `edges` recorded in the file); minmax: the same file min-max scaled. Each falls back to the other files.")] [DefaultValue("ternary")] public string EdgeScale { get; init; } = "ternary";
    [CommandOption("--radius <R>")] [Description("RIP affinity radius (working pixels).")] [DefaultValue(5)] public int Radius { get; init; } = 5;
    [CommandOption("--beta <B>")] [Description("RIP affinity exponent β.")] [DefaultValue(10.0)] public double Beta { get; init; } = 10;
    [CommandOption("--steps <T>")] [Description("RIP random-walk steps t.")] [DefaultValue(256)] public int Steps { get; init; } = 256;
    [CommandOption("--min-area <PX>")] [Description("Minimum component area in working-resolution pixels.")] [DefaultValue(16)] public int MinArea { get; init; } = 16;
    [CommandOption("--max-side <PX>")] [Description("Long side of the working resolution.")] [DefaultValue(128)] public int MaxSide { get; init; } = 128;
    [CommandOption("--edge-threshold <V>")] [Description("Edge value at or above which a pixel is an edge for CCL.")] [DefaultValue(0.5f)] public float EdgeThreshold { get; init; } = 0.5f;
    [CommandOption("--uncertain <V>")] [Description("Edge value given to 'uncertain' (128) pixels of a ternary PNG.")] [DefaultValue(0.5f)] public float Uncertain { get; init; } = 0.5f;
    [CommandOption("--tolerance <EPS>")] [Description("RIP early stop: stop a map when 16 steps change no value by more than EPS × its maximum (0 = always all steps).")] [DefaultValue(1e-4f)] public float Tolerance { get; init; } = 1e-4f;
    [CommandOption("--min-keep <F>")] [Description("A refined mask keeping less than this fraction of its seed is a collapse: the seed is kept (0 = off).")] [DefaultValue(0.8)] public double MinKeep { get; init; } = 0.8;
    [CommandOption("--split-min-fraction <F>")] [Description("A component splits a mask only if it holds at least this fraction of the mask.")] [DefaultValue(0.15f)] public float SplitMinFraction { get; init; } = 0.15f;
    [CommandOption("--close-radius <R>")] [Description("Closing radius (working pixels) applied to refined masks (0 = off).")] [DefaultValue(1)] public int CloseRadius { get; init; } = 1;
    [CommandOption("--no-fill-holes")] [Description("Do not fill the holes of refined masks.")] public bool NoFillHoles { get; init; }
    [CommandOption("--connectivity <N>")] [Description("CCL connectivity, 4 or 8.")] [DefaultValue(8)] public int Connectivity { get; init; } = 8;

    public virtual RefineOptions ToOptions() => new()
    {
        Radius = Radius, Beta = Beta, Steps = Steps, MinArea = MinArea, MaxSide = MaxSide,
        EdgeThreshold = EdgeThreshold, Connectivity = Connectivity, Tolerance = Tolerance,
        MinKeep = MinKeep, SplitMinFraction = SplitMinFraction, CloseRadius = CloseRadius, FillHoles = !NoFillHoles,
    };

    /// <summary>Finds and reads the edge map of <paramref name="stem"/> in --edges as --edge-scale says; throws <see cref="Common.DiffEggException"/> naming the folder when none exists.</summary>
    public (string Path, EdgeMap Map) ReadEdges(string stem) =>
        EdgeMapReader.Load(Edges!, stem, EdgeScale switch { "soft" => Refinement.EdgeScale.Soft, "minmax" => Refinement.EdgeScale.MinMax, _ => Refinement.EdgeScale.Ternary }, Uncertain);

    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(Images)) return ValidationResult.Error("--images DIR is required");
        if (string.IsNullOrWhiteSpace(Edges)) return ValidationResult.Error("--edges DIR is required");
        if (EdgeScale is not ("soft" or "minmax" or "ternary")) return ValidationResult.Error($"--edge-scale {EdgeScale}: expected soft, minmax or ternary");
        if (!(Uncertain >= 0 && Uncertain <= 1)) return ValidationResult.Error($"--uncertain {Uncertain} must be in [0,1]");
        try { ToOptions().Validate(); }
        catch (ArgumentException e) { return ValidationResult.Error(e.Message); }
        return ValidationResult.Success();
    }
}

/// <summary>Per-item failure reporting and the progress bar shared by the refinement commands.</summary>
internal static class BatchRunner
{
    /// <summary>Runs <paramref name="work"/> on every item under a progress bar; a user-facing error fails that item only. Returns the failures (name, message).</summary>
    public static List<(string Item, string Message)> Run<T>(string title, IReadOnlyList<T> items, Func<T, string> name, Action<T> work)
    {
        var failures = new List<(string, string)>();
        AnsiConsole.Progress().Start(ctx =>
        {
            var task = ctx.AddTask(title, maxValue: Math.Max(1, items.Count));
            foreach (var item in items)
            {
                try { work(item); }
                catch (Exception e) when (e is Common.DiffEggException or ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    failures.Add((name(item), e.Message));
                }
                task.Increment(1);
            }
            if (items.Count == 0) task.Value = 1;
        });
        foreach (var (item, msg) in failures) Console.Error.WriteLine($"failed: {item}: {msg}");
        return failures;
    }
}
