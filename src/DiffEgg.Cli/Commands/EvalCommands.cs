using System.ComponentModel;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Evaluation;
using DiffEgg.Formats;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>`diffegg eval instances`: COCO AP/AR of a results file (pycocotools COCOeval, segm or bbox).</summary>
public sealed class EvalInstancesCommand : Command<EvalInstancesCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--gt <GT_JSON>", isRequired: true)] [InputOutput]
        [Description("COCO instances ground truth JSON (images, annotations, categories).")]
        public string Gt { get; init; } = "";

        [CommandOption("--dt <RESULTS_JSON>", isRequired: true)] [InputOutput]
        [Description("COCO results JSON: a list of {image_id, category_id, segmentation or bbox, score}.")]
        public string Dt { get; init; } = "";

        [CommandOption("--iou-type <TYPE>")]
        [Description("segm (mask IoU) or bbox.")]
        [DefaultValue("segm")]
        public string IouType { get; init; } = "segm";

        [CommandOption("--class-agnostic")]
        [Description("Evaluate every ground-truth and result mask as one category (pycocotools' useCats = 0): for category-free masks such as baseline's.")]
        public bool ClassAgnostic { get; init; }

        [CommandOption("--json <OUT_JSON>")] [InputOutput]
        [Description("Also write {AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl} (fractions, -1 where undefined).")]
        public string? Json { get; init; }

        [CommandOption("--timings")]
        [Description("Print on stderr the seconds of each phase: process start-up, reading the ground truth, reading the results, evaluate+accumulate+summarize.")]
        public bool Timings { get; init; }

        public override Spectre.Console.ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Gt)) return Spectre.Console.ValidationResult.Error("--gt: must not be empty");
            if (string.IsNullOrWhiteSpace(Dt)) return Spectre.Console.ValidationResult.Error("--dt: must not be empty");
            if (IouType is not ("segm" or "bbox")) return Spectre.Console.ValidationResult.Error($"--iou-type {IouType}: use segm or bbox");
            return Spectre.Console.ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.Json != null) OutputTarget.CheckFile(settings.Json, "--json");
        double startup = settings.Timings ? (DateTime.Now - System.Diagnostics.Process.GetCurrentProcess().StartTime).TotalSeconds : 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var gt = CocoFiles.ReadInstances(settings.Gt);
        double readGt = clock.Elapsed.TotalSeconds;
        var dt = CocoFiles.ReadResults(settings.Dt, gt, $"the ground truth {settings.Gt}");
        double readDt = clock.Elapsed.TotalSeconds;
        if (settings.ClassAgnostic) (gt, dt) = CocoEvaluator.ClassAgnostic(gt, dt);
        var type = settings.IouType == "bbox" ? CocoIouType.Bbox : CocoIouType.Segm;
        var result = CocoEvaluator.Evaluate(gt, dt, type, gtName: settings.Gt, resultsName: settings.Dt);
        Console.Write(result.Summary());
        double evaluate = clock.Elapsed.TotalSeconds;
        if (settings.Timings)
            Console.Error.WriteLine($"timings: start-up {startup:F3} s, read ground truth {readGt:F3} s, read results {readDt - readGt:F3} s, " +
                $"evaluate+accumulate+summarize {evaluate - readDt:F3} s, total {startup + evaluate:F3} s ({GC.CollectionCount(0)} gen-0 / {GC.CollectionCount(2)} gen-2 collections)");
        if (settings.Json != null)
            AtomicFile.Write(settings.Json, s =>
            {
                using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
                w.WriteStartObject();
                for (int i = 0; i < CocoEvalResult.StatNames.Length; i++) w.WriteNumber(CocoEvalResult.StatNames[i], result.Stats[i]);
                w.WriteEndObject();
            });
        return 0;
    }
}

/// <summary>`diffegg eval panoptic`: PQ/SQ/RQ of panoptic predictions (panopticapi pq_compute).</summary>
public sealed class EvalPanopticCommand : Command<EvalPanopticCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--gt-json <GT_JSON>", isRequired: true)] [InputOutput]
        [Description("COCO panoptic ground truth JSON.")]
        public string GtJson { get; init; } = "";

        [CommandOption("--gt-dir <GT_DIR>", isRequired: true)] [InputOutput]
        [Description("Folder of ground truth panoptic PNGs.")]
        public string GtDir { get; init; } = "";

        [CommandOption("--pred-json <PRED_JSON>", isRequired: true)] [InputOutput]
        [Description("COCO panoptic prediction JSON.")]
        public string PredJson { get; init; } = "";

        [CommandOption("--pred-dir <PRED_DIR>", isRequired: true)] [InputOutput]
        [Description("Folder of predicted panoptic PNGs.")]
        public string PredDir { get; init; } = "";

        [CommandOption("--json <OUT_JSON>")] [InputOutput]
        [Description("Also write {All, Things, Stuff: {pq, sq, rq, n}, per_class: {id: {pq, sq, rq}}} (fractions; null where undefined).")]
        public string? Json { get; init; }

        public override Spectre.Console.ValidationResult Validate()
        {
            foreach (var (v, n) in new[] { (GtJson, "--gt-json"), (GtDir, "--gt-dir"), (PredJson, "--pred-json"), (PredDir, "--pred-dir") })
                if (string.IsNullOrWhiteSpace(v)) return Spectre.Console.ValidationResult.Error($"{n}: must not be empty");
            return Spectre.Console.ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.Json != null) OutputTarget.CheckFile(settings.Json, "--json");
        var gt = PanopticFiles.ReadJson(settings.GtJson, groundTruth: true);
        var pred = PanopticFiles.ReadJson(settings.PredJson, groundTruth: false);
        var r = PanopticEvaluator.Evaluate(gt, settings.GtDir, pred, settings.PredDir, settings.GtJson, settings.PredJson);
        Console.Write(r.Table());
        if (settings.Json != null)
            AtomicFile.Write(settings.Json, s =>
            {
                using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
                void Num(string name, double v) { if (double.IsFinite(v)) w.WriteNumber(name, v); else w.WriteNull(name); }
                w.WriteStartObject();
                foreach (var (name, v) in new[] { ("All", r.All), ("Things", r.Things), ("Stuff", r.Stuff) })
                {
                    w.WriteStartObject(name);
                    Num("pq", v.Pq); Num("sq", v.Sq); Num("rq", v.Rq);
                    w.WriteNumber("n", v.N);
                    w.WriteEndObject();
                }
                w.WriteStartObject("per_class");
                foreach (var (id, pq, sq, rq) in r.PerClass)
                {
                    w.WriteStartObject(id.ToString());
                    Num("pq", pq); Num("sq", sq); Num("rq", rq);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
                w.WriteEndObject();
            });
        return 0;
    }
}
