using DiffEgg.Refinement;
using System.ComponentModel;
using DiffEgg.Common;
using DiffEgg.Demo;
using DiffEgg.Evaluation;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary><c>diffegg demo</c>: the whole method on synthetic scenes with the embedded model, with an HTML report (options only; the work is <see cref="DemoRunner"/>).</summary>
public sealed class DemoCommand : Command<DemoCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--out <DIR>")] [InputOutput] [DefaultValue("demo-out")] [Description("Output folder (index.html, metrics.json, data/, edges/, ...).")] public string Out { get; init; } = "demo-out";
        [CommandOption("--count <N>")] [DefaultValue(8)] [Description("Number of synthetic test-split scenes (64×64).")] public int Count { get; init; } = 8;
        [CommandOption("--model <DIR>")] [InputOutput] [Description("Model folder (default: the embedded model).")] public string? Model { get; init; }
        [CommandOption("--seed <S>")] [DefaultValue(0L)] [Description("Seed of the scenes, the noise and the simulations.")] public long Seed { get; init; }
        [CommandOption("--timesteps <LIST>")] [DefaultValue(DiffEgg.Edges.EdgePipelineOptions.DefaultTimestepList)] [Description("Decreasing timesteps scanned by PeakKL.")] public string Timesteps { get; init; } = DiffEgg.Edges.EdgePipelineOptions.DefaultTimestepList;
        [CommandOption("--merge-rate <P>")] [DefaultValue(0.5)] [Description("Simulated coarse masks: probability that two touching instances are merged.")] public double MergeRate { get; init; } = new CoarseSimulationOptions().MergeRate;
        [CommandOption("--fragment-rate <P>")] [DefaultValue(0.3)] [Description("Simulated coarse masks: probability that an instance is cut in two.")] public double FragmentRate { get; init; } = new CoarseSimulationOptions().FragmentRate;

        [CommandOption("--uncertain <V>")] [DefaultValue(EdgeMapReader.DefaultUncertain)] [Description("Edge value of 'uncertain' ternary pixels for refinement (as diffegg refine).")] public float Uncertain { get; init; } = EdgeMapReader.DefaultUncertain;
        [CommandOption("--edge-input <KIND>")] [DefaultValue("ternary")] [Description("Edge map given to refinement: ternary (Alg 2 PNG), soft (raw EdgeKL scaled by the ternary rule's thresholds) or sobel (image Sobel baseline, no model).")] public string EdgeInput { get; init; } = "ternary";
        [CommandOption("--ternary <RULE>")] [DefaultValue(DiffEgg.Edges.TernaryRule.DefaultName)] [Description("Thresholds of the ternary edge map (Alg 2): log-interior (the paper's edge test, the interior test on ln E), musigma (the paper's μ±σ), log, auto, quantile or quantile:LO,HI.")] public string Ternary { get; init; } = DiffEgg.Edges.TernaryRule.DefaultName;
        [CommandOption("--threads <N>")] [DefaultValue(1)] [Description("libtorch CPU threads (1: the tensors are tiny, and extra threads slow it down on a busy machine).")] public int Threads { get; init; } = 1;
        [CommandOption("--adapter <DIR>")] [InputOutput] [Description("Adapter folder (from `diffegg finetune`) whose one-step edges are shown beside the pseudo-edges, with the refinement AP of each. Default: the embedded model's shipped adapter (models/embedded/edge-adapter) when the embedded model is used.")] public string? Adapter { get; init; }
        [CommandOption("--no-adapter")] [Description("Pseudo-edges only: no one-step edges, not even the shipped adapter's.")] public bool NoAdapter { get; init; }
        [CommandOption("--no-oracle")] [Description("Skip the oracle rows (refinement with ground-truth boundaries as edges).")] public bool NoOracle { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            if (Count < 1 || Count > 1000) return ValidationResult.Error($"--count {Count}: must be in 1..1000");
            if (!(Uncertain >= 0 && Uncertain <= 1)) return ValidationResult.Error($"--uncertain {Uncertain}: must be in [0,1]");
            if (EdgeInput is not ("ternary" or "soft" or "sobel")) return ValidationResult.Error($"--edge-input {EdgeInput}: expected ternary, soft or sobel");
            if (DiffEgg.Edges.TernaryRule.TryParse(Ternary) is null) return ValidationResult.Error($"--ternary {Ternary}: use {DiffEgg.Edges.TernaryRule.Names}");
            if (Adapter is not null && string.IsNullOrWhiteSpace(Adapter)) return ValidationResult.Error("--adapter: must not be empty");
            if (Adapter is not null && !Directory.Exists(Adapter)) return ValidationResult.Error($"--adapter {Adapter}: no such folder");
            if (Adapter is not null && NoAdapter) return ValidationResult.Error("--no-adapter: cannot be combined with --adapter");
            if (Threads is < 1) return ValidationResult.Error($"--threads {Threads}: must be ≥ 1");
            if (EdgesCommand.ParseTimesteps(Timesteps) is null) return ValidationResult.Error($"--timesteps {Timesteps}: expected a comma-separated list of integers");
            try { ToCoarse().Validate(); } catch (Common.InvalidOptionException e) { return ValidationResult.Error(OptionFlags.Message(e)); }
            return ValidationResult.Success();
        }

        internal CoarseSimulationOptions ToCoarse() => new() { MergeRate = MergeRate, FragmentRate = FragmentRate };
    }

    /// <summary>The embedded model's shipped adapter folder when the demo runs on the embedded model (no <c>--model</c>) and the folder exists; else null.</summary>
    public static string? ShippedAdapter(string? model)
    {
        if (model is not null) return null;
        string? embedded = DiffEgg.Models.EmbeddedModel.FindDefaultPath();
        if (embedded is null) return null;
        string dir = Path.Combine(embedded, "edge-adapter");
        return Directory.Exists(dir) ? dir : null;
    }

    /// <summary>Runs <see cref="DemoRunner"/> under a progress display and prints the metric tables.</summary>
    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var options = new DemoOptions
        {
            OutDir = s.Out, Count = s.Count, ModelPath = s.Model, Seed = s.Seed,
            Timesteps = EdgesCommand.ParseTimesteps(s.Timesteps)!,
            Ternary = DiffEgg.Edges.TernaryRule.TryParse(s.Ternary)!,
            Coarse = s.ToCoarse(), Uncertain = s.Uncertain, EdgeInput = s.EdgeInput switch { "soft" => DemoEdgeInput.Soft, "sobel" => DemoEdgeInput.Sobel, _ => DemoEdgeInput.Ternary }, Oracle = !s.NoOracle, Threads = s.Threads, AdapterPath = s.NoAdapter ? null : s.Adapter ?? ShippedAdapter(s.Model),
        };
        OutputTarget.CheckFolder(s.Out, "--out");
        AnsiConsole.MarkupLine($"[bold]DiffEgg demo[/]: {s.Count} synthetic scenes, model {Markup.Escape(s.Model ?? "embedded")}, [yellow]simulated[/] coarse instance masks and weak semantic masks → {Markup.Escape(s.Out)}");
        DemoResult? result = null;
        string[] labels = { "scenes + ground truth", "edges (PeakKL, EdgeKL)", "simulate inputs", "refine (Alg 4)", "panoptic pseudo-labels", "evaluate", "report" };
        AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn()).Start(ctx =>
        {
            var tasks = labels.Select(l => ctx.AddTask(l, autoStart: false)).ToArray();
            result = OptionFlags.Check(() => DemoRunner.Run(options, (stage, done, total) =>
            {
                var t = tasks[(int)stage];
                if (!t.IsStarted) t.StartTask();
                t.MaxValue = total;
                t.Value = done;
                if (done >= total) t.StopTask();
            }));
            foreach (var t in tasks) { t.Value = t.MaxValue; t.StopTask(); }
        });
        var r = result!;
        var ap = new Table().AddColumns("mask AP/AR", "AP", "AP50", "AP75", "AR100");
        var apRows = new List<(string, CocoEvalResult)> { ("simulated coarse", r.Coarse), ("refined, model edges", r.Refined) };
        if (r.OneStepRefined is { } oneStepAp) apRows.Add(("refined, one-step edges (adapter)", oneStepAp));
        if (r.OracleRefined is { } oracleAp) apRows.Add(("refined, GT edges (oracle)", oracleAp));
        foreach (var (name, e) in apRows)
        {
            var st = e.StatsByName();
            ap.AddRow(name, Fmt(st["AP"]), Fmt(st["AP50"]), Fmt(st["AP75"]), Fmt(st["AR100"]));
        }
        AnsiConsole.Write(ap);
        var pq = new Table().AddColumns("panoptic (from simulated semantic)", "PQ", "SQ", "RQ", "PQ things");
        var pqRows = new List<(string, PanopticEvalResult)> { ("naive connected regions", r.Naive), ("pseudo-labels, model edges", r.Pseudo) };
        if (r.OraclePseudo is { } oraclePq) pqRows.Add(("pseudo-labels, GT edges (oracle)", oraclePq));
        foreach (var (name, e) in pqRows)
            pq.AddRow(name, Pct(e.All.Pq), Pct(e.All.Sq), Pct(e.All.Rq), Pct(e.Things.Pq));
        AnsiConsole.Write(pq);
        Console.WriteLine($"report: {Path.GetFullPath(r.IndexPath)}");
        Console.WriteLine($"metrics: {Path.GetFullPath(r.MetricsPath)}");
        return 0;
    }

    static string Fmt(double v) => v < 0 ? "n/a" : v.ToString("F3", System.Globalization.CultureInfo.InvariantCulture);
    static string Pct(double v) => double.IsFinite(v) ? (100 * v).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "n/a";
}
