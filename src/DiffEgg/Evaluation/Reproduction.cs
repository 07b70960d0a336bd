using System.Diagnostics;
using DiffEgg.Baseline;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Data.Synthetic;
using DiffEgg.Demo;
using DiffEgg.Edges;
using DiffEgg.FineTuning;
using DiffEgg.Formats;
using DiffEgg.Models;
using DiffEgg.Refinement;
using static TorchSharp.torch;

namespace DiffEgg.Evaluation;

/// <summary>Settings of <see cref="Reproduction.Run"/>.</summary>
public sealed record ReproduceOptions
{
    public required string OutDir { get; init; }
    /// <summary>Synthetic test scenes (`synth --split test`).</summary>
    public int Count { get; init; } = 100;
    public long Seed { get; init; }
    /// <summary>Model folder (null = the embedded model).</summary>
    public string? Model { get; init; }
    /// <summary>Adapter folder for the one-step rows (null = none: those rows are left out).</summary>
    public string? Adapter { get; init; }
    /// <summary>The PeakKL list of Table E's PeakKL row.</summary>
    public int[] PeakTimesteps { get; init; } = { 50, 40, 30, 20, 10 };
    /// <summary>The fixed timestep of the other rows (the default of `edges`).</summary>
    public int FixedTimestep { get; init; } = 10;
}

/// <summary>One row of a reproduction table: a label, class-agnostic AP / AP50 / AP75 / AR100, and optional extras.</summary>
public sealed record ReproRow(string Label, double AP, double AP50, double AP75, double AR100)
{
    /// <summary>Merged ground-truth objects (of the simulated coarse masks) that the row's masks match at IoU ≥ 0.5, and how many there were.</summary>
    public (int Fixed, int Total)? Merged { get; init; }
    /// <summary>The same for fragmented objects.</summary>
    public (int Fixed, int Total)? Fragmented { get; init; }
    /// <summary>Boundary F1 of the edge map (Table F).</summary>
    public double? BoundaryF1 { get; init; }
}

/// <summary>What <see cref="Reproduction.Run"/> measured.</summary>
public sealed record ReproReport(int Scenes, IReadOnlyList<ReproRow> Table1, IReadOnlyList<ReproRow> TableE, IReadOnlyList<ReproRow> TableF,
    IReadOnlyList<(string Stage, double MsPerImage)> StageTimes, double Seconds, string ModelName, string? AdapterName);

/// <summary>
/// The paper's tables in miniature on synthetic test scenes with exact ground truth (all AP class-agnostic, pycocotools-exact):
/// Table 1 — coarse masks (simulated, DiffCut, MaskCut) before and after DiffEgg's refinement; Table E — stage by stage on the
/// simulated coarse masks (edges at a fixed timestep, at PeakKL's, one-step; the RIP walk; the IoU merge); Table F — EdgeKL's
/// divergence (KL, JSD, L2, cosine): boundary F1 and AP; and milliseconds per image for every stage.
/// </summary>
public static class Reproduction
{
    static readonly EdgeMetric[] Metrics = { EdgeMetric.KL, EdgeMetric.JSD, EdgeMetric.L2, EdgeMetric.Cosine };

    public static ReproReport Run(ReproduceOptions o, Action<string, int, int>? progress = null)
    {
        if (o.Count < 1) throw new ArgumentException($"count {o.Count} must be at least 1");
        var clock = Stopwatch.StartNew();
        string dataDir = Path.Combine(o.OutDir, "data");
        var sceneOptions = new SceneOptions { Size = 64 };
        var summary = SyntheticDatasetWriter.Write(dataDir, sceneOptions, o.Seed, SyntheticSplit.Test, 0, o.Count, d => progress?.Invoke("scenes", d, o.Count));
        if (summary.Failed.Count > 0) throw new DiffEggException($"{dataDir}: {summary.Failed.Count} scene(s) could not be written: {summary.Failed[0]}");
        var gen = new SceneGenerator(sceneOptions);
        var scenes = Enumerable.Range(0, o.Count).Select(i => (Id: (long)SyntheticDataset.ImageId(SyntheticSplit.Test, i), Scene: gen.Generate(o.Seed, SyntheticSplit.Test, i))).ToList();
        var gt = CocoFiles.ReadInstances(Path.Combine(dataDir, "instances.json"));

        string modelDir = o.Model ?? EmbeddedModel.DefaultPath;
        using var model = DiffusionModelFolder.Load(modelDir, CPU);
        using var adapter = o.Adapter is null ? null : EdgeAdapter.Load(o.Adapter, model.Unet);
        int native = model.Unet.Config.SampleSize * (model.Vae?.DownFactor ?? 1);
        var fixedPipes = Metrics.Select(m => new EdgePipeline(model, new EdgePipelineOptions { FixedTimestep = o.FixedTimestep, Metric = m, Size = native, Seed = o.Seed })).ToArray();
        using var peak = new EdgePipeline(model, new EdgePipelineOptions { Timesteps = o.PeakTimesteps, Size = native, Seed = o.Seed });
        using var oneStep = adapter is null ? null : new OneStepEdgePipeline(model, adapter, new EdgePipelineOptions { Size = adapter.Size ?? native, Seed = o.Seed });
        using var diffcut = new BaselineSegmenter(model, new BaselineOptions { Method = BaselineMethod.DiffCut, Size = native, Seed = o.Seed });
        using var maskcut = new BaselineSegmenter(model, new BaselineOptions { Method = BaselineMethod.MaskCut, Size = native, Seed = o.Seed });

        var times = new Dictionary<string, double>();
        T Time<T>(string stage, Func<T> f)
        {
            var sw = Stopwatch.StartNew();
            var r = f();
            times[stage] = times.GetValueOrDefault(stage) + sw.Elapsed.TotalMilliseconds;
            return r;
        }

        var splitOnly = new RefineOptions { Steps = 0, MergeIoU = 1.0 };
        var withRip = new RefineOptions { MergeIoU = 1.0 };
        var full = new RefineOptions();
        // masks per named variant, over all scenes
        var masks = new Dictionary<string, List<CocoResult>>();
        void Add(string key, IEnumerable<CocoResult> r) { if (!masks.TryGetValue(key, out var l)) masks[key] = l = new List<CocoResult>(); l.AddRange(r); }
        var merged = new List<(long Image, bool[] Object)>();
        var fragmented = new List<(long Image, bool[] Object)>();

        try
        {
            for (int i = 0; i < scenes.Count; i++)
            {
                using var scope = NewDisposeScope();
                var (id, s) = scenes[i];
                var image = new CocoImage(id, s.Width, s.Height, SyntheticDataset.FileStem(SyntheticSplit.Test, i) + ".png");
                // inputs: simulated coarse masks (as the demo), the two baselines
                var sim = CoarseMaskSimulator.Simulate(s.SegmentMap, s.Width, s.Height, s.Instances.Select(x => (x.SegmentId, x.CategoryId)).ToList(),
                    DemoRunner.StreamSeed(o.Seed, id, 1));
                var coarse = sim.Masks.Select(m => CocoRefinement.ToResult(id, new InstanceMask(s.Width, s.Height, m.Pixels, m.CategoryId, m.Score))).ToList();
                foreach (var m in sim.Masks.Where(m => m.Kind != SimulatedMaskKind.Intact))
                    foreach (int seg in m.SourceSegmentIds)
                        (m.Kind == SimulatedMaskKind.Merged ? merged : fragmented).Add((id, s.MaskOf(seg)));
                var dc = Time("baseline: DiffCut (UNet pass + features + cut)", () => diffcut.Segment(s.Image, id));
                var mc = Time("baseline: MaskCut (UNet pass + features + cuts)", () => maskcut.Segment(s.Image, id));
                // edges
                var fixedEdges = new EdgeMap[Metrics.Length];
                for (int k = 0; k < Metrics.Length; k++)
                {
                    using var r = Time($"edges: one pass at t = {o.FixedTimestep} + EdgeKL-{Metrics[k]} + ternary", () => fixedPipes[k].Run(s.Image));
                    fixedEdges[k] = EdgeMapReader.FromTernary(r.Ternary, s.Width, s.Height);
                }
                EdgeMap peakEdges;
                using (var r = Time($"edges: PeakKL over {o.PeakTimesteps.Length} passes + EdgeKL-KL + ternary", () => peak.Run(s.Image))) peakEdges = EdgeMapReader.FromTernary(r.Ternary, s.Width, s.Height);
                EdgeMap? oneEdges = null;
                if (oneStep is not null)
                    using (var r = Time("edges: one-step (one UNet pass + G_φ + skeleton)", () => oneStep.Run(s.Image))) oneEdges = EdgeMapReader.FromTernary(r.Ternary, s.Width, s.Height);
                var best = oneEdges ?? fixedEdges[0];

                // Table 1
                Add("sim", coarse);
                Add("sim+", Time("refinement (Alg 4, defaults)", () => CocoRefinement.RefineImage(image, coarse, best, full)));
                Add("dc", dc);
                Add("dc+", CocoRefinement.RefineImage(image, dc, best, full));
                Add("mc", mc);
                Add("mc+", CocoRefinement.RefineImage(image, mc, best, full));
                // Table E
                Add("E1", CocoRefinement.RefineImage(image, coarse, fixedEdges[0], splitOnly));
                Add("E2", CocoRefinement.RefineImage(image, coarse, peakEdges, splitOnly));
                var eBest = peakEdges;
                if (oneEdges is not null) { Add("E3", CocoRefinement.RefineImage(image, coarse, oneEdges, splitOnly)); eBest = oneEdges; }
                Add("E4", CocoRefinement.RefineImage(image, coarse, eBest, withRip));
                Add("E5", CocoRefinement.RefineImage(image, coarse, eBest, full));
                // Table F
                for (int k = 0; k < Metrics.Length; k++) Add($"F{k}", CocoRefinement.RefineImage(image, coarse, fixedEdges[k], full));
                progress?.Invoke("scenes: edges, baselines, refinement", i + 1, scenes.Count);
            }
        }
        finally { foreach (var p in fixedPipes) p.Dispose(); }

        ReproRow Row(string label, string key, bool counts = false)
        {
            var list = masks.GetValueOrDefault(key) ?? new List<CocoResult>();
            var (g, d) = CocoEvaluator.ClassAgnostic(gt, list);
            var st = CocoEvaluator.Evaluate(g, d, CocoIouType.Segm).Stats;
            var row = new ReproRow(label, st[0], st[1], st[2], st[8]);
            if (!counts) return row;
            var byImage = list.GroupBy(r => r.ImageId).ToDictionary(x => x.Key, x => x.Select(r => r.Segmentation!.Rle!.Decode()).ToList());
            int Fixed(List<(long Image, bool[] Object)> objs) => objs.Count(x => byImage.TryGetValue(x.Image, out var ms) && ms.Any(m => IoU(m, x.Object) >= 0.5));
            return row with { Merged = (Fixed(merged), merged.Count), Fragmented = (Fixed(fragmented), fragmented.Count) };
        }

        string edgeName = oneStep is not null ? "one-step edges" : $"EdgeKL edges at t = {o.FixedTimestep}";
        var t1 = new List<ReproRow>
        {
            Row("simulated coarse masks", "sim"), Row($"simulated coarse masks + DiffEgg ({edgeName})", "sim+"),
            Row("DiffCut baseline", "dc"), Row($"DiffCut baseline + DiffEgg ({edgeName})", "dc+"),
            Row("MaskCut baseline", "mc"), Row($"MaskCut baseline + DiffEgg ({edgeName})", "mc+"),
        };
        var tE = new List<ReproRow>
        {
            Row("coarse masks (simulated)", "sim", true),
            Row($"+ split by EdgeKL edges at fixed t = {o.FixedTimestep} (no RIP walk, no merge)", "E1", true),
            Row($"+ split by EdgeKL edges at PeakKL's timestep ({string.Join(",", o.PeakTimesteps)})", "E2", true),
        };
        if (oneStep is not null) tE.Add(Row("+ split by one-step edges (fine-tuning, Alg 3)", "E3", true));
        tE.Add(Row("+ RIP random walk (Alg 4)", "E4", true));
        tE.Add(Row("+ IoU merge (Alg 4) = the default refinement", "E5", true));

        // Table F: boundary F1 of each divergence at the fixed timestep (bench-edges' scoring), AP of the default refinement with it
        var bench = EdgeBenchmark.RunDiffEgg(model, EdgeBenchmark.Load(dataDir), new EdgeBenchmarkOptions
        {
            Timesteps = Array.Empty<int>(), FixedTimesteps = new[] { o.FixedTimestep }, Metrics = Metrics, Sobel = Array.Empty<SobelVariant>(), Seed = o.Seed,
        });
        var tF = new List<ReproRow>();
        for (int k = 0; k < Metrics.Length; k++)
        {
            var brow = bench.Rows.First(r => r.Metric == Metrics[k] && r.FixedTimestep == o.FixedTimestep);
            tF.Add(Row($"EdgeKL with {EdgeBenchmark.MetricName(Metrics[k])}", $"F{k}") with { BoundaryF1 = brow.Summary.F1 });
        }
        var stageTimes = times.Select(kv => (kv.Key, kv.Value / scenes.Count)).ToList();
        return new ReproReport(scenes.Count, t1, tE, tF, stageTimes, clock.Elapsed.TotalSeconds, Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDir)),
            o.Adapter is null ? null : Path.GetFileName(Path.TrimEndingDirectorySeparator(o.Adapter)));
    }


    static double IoU(byte[] a, bool[] b)
    {
        int i = 0, u = 0;
        for (int k = 0; k < b.Length; k++) { bool x = a[k] != 0; if (x && b[k]) i++; if (x || b[k]) u++; }
        return u == 0 ? 0 : (double)i / u;
    }
}
