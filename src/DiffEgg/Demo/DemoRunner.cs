using System.Diagnostics;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Data.Synthetic;
using DiffEgg.Edges;
using DiffEgg.Evaluation;
using DiffEgg.Formats;
using DiffEgg.Models;
using DiffEgg.Refinement;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Demo;

/// <summary>Options of the out-of-the-box demo (<c>diffegg demo</c>).</summary>
public sealed record DemoOptions
{
    /// <summary>Default timesteps of the demo: <see cref="EdgePipelineOptions.DefaultTimesteps"/> (the single step t = 10).</summary>
    public static IReadOnlyList<int> DefaultTimesteps => EdgePipelineOptions.DefaultTimesteps;

    public required string OutDir { get; init; }
    /// <summary>Number of test-split synthetic scenes.</summary>
    public int Count { get; init; } = 8;
    /// <summary>Model folder; null = the embedded model (<see cref="EmbeddedModel.DefaultPath"/>).</summary>
    public string? ModelPath { get; init; }
    /// <summary>Seed of the scenes, the edge noise ε and the simulations.</summary>
    public long Seed { get; init; }
    /// <summary>Timesteps scanned by PeakKL (Alg 1), strictly decreasing.</summary>
    public int[] Timesteps { get; init; } = DefaultTimesteps.ToArray();
    /// <summary>Thresholding rule of the ternary map (Alg 2), used for the written edges and for the soft scaling of the Sobel baseline.</summary>
    public TernaryRule Ternary { get; init; } = TernaryRule.Default;
    /// <summary>Scene side in pixels.</summary>
    public int Size { get; init; } = 64;
    public CoarseSimulationOptions Coarse { get; init; } = new();
    public WeakSemanticOptions Semantic { get; init; } = new();
    public RefineOptions Refine { get; init; } = new();
    /// <summary>Edge value of "uncertain" ternary pixels for Alg 4 (as <c>diffegg refine --uncertain</c>, default 0.5).</summary>
    public float Uncertain { get; init; } = EdgeMapReader.DefaultUncertain;
    /// <summary>Which edge map Alg 4 gets: the ternary PNG (Alg 2) or the soft ternary scaling of the raw EdgeKL map (<see cref="EdgeScale.Soft"/>).</summary>
    public DemoEdgeInput EdgeInput { get; init; } = DemoEdgeInput.Ternary;
    /// <summary>Also refine with ground-truth boundaries as edges (an oracle upper bound that separates edge quality from the refinement).</summary>
    public bool Oracle { get; init; } = true;
    /// <summary>
    /// libtorch CPU threads during the run (restored afterwards; null = leave libtorch's setting). Default 1: the demo's tensors are tiny
    /// (64×64), and on a busy 2-core machine 2 threads made the edge stage 5× slower (docs/demo.md).
    /// </summary>
    public int? Threads { get; init; } = 1;
    /// <summary>
    /// An adapter folder from <c>diffegg finetune</c>: also compute the one-step edges (Alg 3, <c>diffegg edges --adapter</c>) of every scene,
    /// refine the same coarse masks with their ternary map (edge p ≥ the adapter's threshold, interior elsewhere) and report both side by side.
    /// Null = pseudo-edges only (the default).
    /// </summary>
    public string? AdapterPath { get; init; }
}

/// <summary>The edge map handed to refinement in the demo.</summary>
public enum DemoEdgeInput
{
    /// <summary><c>stem.ternary.png</c>: edge 1, uncertain <see cref="DemoOptions.Uncertain"/>, interior 0.</summary>
    Ternary,
    /// <summary><c>stem.edges.safetensors</c> scaled by <see cref="EdgeScale.Soft"/>.</summary>
    Soft,
    /// <summary>Baseline without the model: Sobel (per-channel max, blur σ 1.5) on the image, scaled by <see cref="EdgeScale.Soft"/>.</summary>
    Sobel,
}

/// <summary>Stages of the demo, in order (for progress reporting).</summary>
public enum DemoStage { Data, Edges, Simulate, Refine, Panoptic, Evaluate, Report }

/// <summary>What the demo did on one scene, with the relative paths of its report images.</summary>
public sealed class DemoScene
{
    public required string Stem { get; init; }
    public required long ImageId { get; init; }
    public required int[] Timesteps { get; init; }
    public required double[] KlCurve { get; init; }
    public required int ChosenTimestep { get; init; }
    public int GtInstances { get; set; }
    public int TouchingPairs { get; set; }
    public int Merges { get; set; }
    public int Fragmented { get; set; }
    public int CoarseMasks { get; set; }
    public int RefinedMasks { get; set; }
    public int NaiveThingSegments { get; set; }
    public int PseudoThingSegments { get; set; }
    public int OracleRefinedMasks { get; set; }
    public int OraclePseudoThingSegments { get; set; }
    /// <summary>Masks after refinement with the one-step edges (with <see cref="DemoOptions.AdapterPath"/>).</summary>
    public int OneStepRefinedMasks { get; set; }
    /// <summary>Report image key → path relative to the output folder.</summary>
    public Dictionary<string, string> Images { get; } = new();
}

/// <summary>Everything the demo measured; written to metrics.json and index.html.</summary>
public sealed class DemoResult
{
    public required DemoOptions Options { get; init; }
    public required string ModelPath { get; init; }
    public required bool EmbeddedModel { get; init; }
    /// <summary>What the model folder says of itself: UNet parameters, and the length of its training when it holds <c>training/loss.csv</c>.</summary>
    public string ModelFacts { get; init; } = "";
    public required List<DemoScene> Scenes { get; init; }
    public required CocoEvalResult Coarse { get; init; }
    public required CocoEvalResult Refined { get; init; }
    public required PanopticEvalResult Naive { get; init; }
    public required PanopticEvalResult Pseudo { get; init; }
    /// <summary>Refinement / pseudo-labels with ground-truth boundary edges (null when <see cref="DemoOptions.Oracle"/> is off).</summary>
    public CocoEvalResult? OracleRefined { get; init; }
    public PanopticEvalResult? OraclePseudo { get; init; }
    /// <summary>Refinement with the adapter's one-step edges (null without <see cref="DemoOptions.AdapterPath"/>).</summary>
    public CocoEvalResult? OneStepRefined { get; init; }
    public required Dictionary<DemoStage, double> StageSeconds { get; init; }
    public string IndexPath => Path.Combine(Options.OutDir, "index.html");
    public string MetricsPath => Path.Combine(Options.OutDir, "metrics.json");
}

/// <summary>
/// Runs DiffEGG end to end on synthetic scenes: edges (PeakKL Alg 1, EdgeKL Eq 6, ternary Alg 2) with the embedded model, refinement of
/// simulated coarse instance masks (Alg 4) and panoptic pseudo-labels from simulated weak semantic masks (Alg 4 for WPS), evaluated against
/// the exact ground truth with COCO AP/AR and PQ; writes metrics.json and a self-contained index.html.
/// </summary>
public static class DemoRunner
{
    /// <summary>Runs all stages; <paramref name="progress"/> gets (stage, done, total) after every item.</summary>
    public static DemoResult Run(DemoOptions o, Action<DemoStage, int, int>? progress = null)
    {
        if (o.Count < 1) throw new ArgumentException($"count must be ≥ 1, got {o.Count}");
        o.Coarse.Validate(); o.Semantic.Validate(); o.Refine.Validate();
        string modelPath = o.ModelPath ?? EmbeddedModel.DefaultPath;
        if (o.Threads is < 1) throw new ArgumentException($"threads must be ≥ 1, got {o.Threads}");
        TorchRuntime.EnsureLoaded();
        int previousThreads = torch.get_num_threads();
        if (o.Threads is int nt) torch.set_num_threads(nt);
        try { return RunStages(o, modelPath, progress); }
        finally { if (o.Threads is not null) torch.set_num_threads(previousThreads); }
    }

    static DemoResult RunStages(DemoOptions o, string modelPath, Action<DemoStage, int, int>? progress)
    {
        var times = new Dictionary<DemoStage, double>();
        var sw = Stopwatch.StartNew();
        void Done(DemoStage s) { times[s] = sw.Elapsed.TotalSeconds; sw.Restart(); }
        string dir = o.OutDir, dataDir = Path.Combine(dir, "data"), edgeDir = Path.Combine(dir, "edges"), reportDir = Path.Combine(dir, "report");
        Directory.CreateDirectory(dir);
        Directory.CreateDirectory(reportDir);

        // 1. synthetic test scenes with exact ground truth
        var sceneOptions = new SceneOptions { Size = o.Size };
        var summary = SyntheticDatasetWriter.Write(dataDir, sceneOptions, o.Seed, SyntheticSplit.Test, 0, o.Count, d => progress?.Invoke(DemoStage.Data, d, o.Count));
        if (summary.Failed.Count > 0) throw new DiffEggException($"{dataDir}: {summary.Failed.Count} scene(s) could not be written: {summary.Failed[0]}");
        var gen = new SceneGenerator(sceneOptions);
        var scenes = Enumerable.Range(0, o.Count).Select(i => (Stem: SyntheticDataset.FileStem(SyntheticSplit.Test, i), Id: (long)SyntheticDataset.ImageId(SyntheticSplit.Test, i),
            Scene: gen.Generate(o.Seed, SyntheticSplit.Test, i))).ToList();
        var isThing = SyntheticCategories.All.ToDictionary(c => c.Id, c => c.IsThing);
        Done(DemoStage.Data);

        // 2. edges with the model (same pipeline and files as `diffegg edges`)
        var report = new List<DemoScene>();
        var edgeValues = new List<(float[] Edges, sbyte[] Ternary)>();
        var oneStepValues = new List<(float[] Edges, sbyte[] Ternary)>();
        string oneStepDir = Path.Combine(dir, "edges-onestep");
        string modelFacts;
        using (var model = DiffusionModelFolder.Load(modelPath, CPU))
        {
            modelFacts = ModelFacts(modelPath, model);
            var po = new EdgePipelineOptions { Timesteps = o.Timesteps, Size = o.Size, Seed = o.Seed, Ternary = o.Ternary };
            EdgePipeline pipeline;
            try { pipeline = new EdgePipeline(model, po); }
            catch (ArgumentException e) { throw new DiffEggException($"demo edges ({modelPath}): {e.Message}"); }
            using var _ = pipeline;
            using var adapter = o.AdapterPath is null ? null : FineTuning.EdgeAdapter.Load(o.AdapterPath, model.Unet);
            FineTuning.OneStepEdgePipeline? oneStep = null;
            if (adapter is not null)
            {
                try { oneStep = new FineTuning.OneStepEdgePipeline(model, adapter, po); }
                catch (ArgumentException e) { throw new DiffEggException($"demo one-step edges ({o.AdapterPath}): {e.Message}"); }
            }
            using var __ = oneStep;
            for (int i = 0; i < scenes.Count; i++)
            {
                var (stem, id, scene) = scenes[i];
                using var scope = torch.NewDisposeScope();
                using var r = pipeline.Run(scene.Image);
                pipeline.Write(r, edgeDir, stem, Path.Combine(dataDir, "images", stem + ".png"));
                edgeValues.Add((r.Edges.contiguous().data<float>().ToArray(), r.Ternary.contiguous().data<sbyte>().ToArray()));
                report.Add(new DemoScene { Stem = stem, ImageId = id, Timesteps = r.Timesteps, KlCurve = r.KlCurve, ChosenTimestep = r.ChosenTimestep });
                if (oneStep is not null)
                {
                    using var r1 = oneStep.Run(scene.Image);
                    oneStep.Write(r1, oneStepDir, stem, Path.Combine(dataDir, "images", stem + ".png"));
                    oneStepValues.Add((r1.Edges.contiguous().data<float>().ToArray(), r1.Ternary.contiguous().data<sbyte>().ToArray()));
                }
                progress?.Invoke(DemoStage.Edges, i + 1, scenes.Count);
            }
        }
        Done(DemoStage.Edges);

        // 3. simulated coarse instance masks and simulated weak semantic masks
        var coarse = new List<CoarseSimulation>();
        var semantic = new List<byte[]>();
        string semDir = Path.Combine(dir, "simulated_semantic");
        Directory.CreateDirectory(semDir);
        string oracleDir = Path.Combine(dir, "oracle_edges");
        if (o.Oracle) Directory.CreateDirectory(oracleDir);
        for (int i = 0; i < scenes.Count; i++)
        {
            var (stem, id, s) = scenes[i];
            var inst = s.Instances.Select(x => (x.SegmentId, x.CategoryId)).ToList();
            var c = CoarseMaskSimulator.Simulate(s.SegmentMap, s.Width, s.Height, inst, StreamSeed(o.Seed, id, 1), o.Coarse);
            coarse.Add(c);
            report[i].GtInstances = inst.Count; report[i].TouchingPairs = c.TouchingPairs; report[i].Merges = c.Merges;
            report[i].Fragmented = c.Fragmented; report[i].CoarseMasks = c.Masks.Count;
            var sem = WeakSemanticSimulator.Simulate(s.ClassMap, s.Width, s.Height, StreamSeed(o.Seed, id, 2), o.Semantic);
            semantic.Add(sem);
            PanopticFiles.WriteClassIdPng(Path.Combine(semDir, stem + ".png"), sem, s.Width, s.Height);
            if (o.Oracle) ImageIO.WriteGrayPng(Path.Combine(oracleDir, stem + ".png"), GroundTruthBoundaries(s.SegmentMap, s.Width, s.Height), s.Width, s.Height);
            progress?.Invoke(DemoStage.Simulate, i + 1, scenes.Count);
        }
        string coarsePath = Path.Combine(dir, "simulated_coarse_instances.json");
        var coarseResults = scenes.Select((x, i) => coarse[i].Masks.Select(m => CocoRefinement.ToResult(x.Id, new InstanceMask(x.Scene.Width, x.Scene.Height, m.Pixels, m.CategoryId, m.Score))).ToList()).ToList();
        CocoFiles.WriteResults(coarsePath, coarseResults.SelectMany(r => r));
        Done(DemoStage.Simulate);

        // 4. refinement of the simulated coarse masks with the edge maps (Alg 4, as `diffegg refine`)
        var refined = new List<List<CocoResult>>();
        var oracleRefined = new List<List<CocoResult>>();
        var oneStepRefined = new List<List<CocoResult>>();
        for (int i = 0; i < scenes.Count; i++)
        {
            var (stem, id, s) = scenes[i];
            var image = new CocoImage(id, s.Width, s.Height, stem + ".png");
            var r = CocoRefinement.RefineImage(image, coarseResults[i], ModelEdges(edgeDir, stem, o), o.Refine);
            refined.Add(r);
            report[i].RefinedMasks = r.Count;
            if (o.Oracle)
            {
                var ro = CocoRefinement.RefineImage(image, coarseResults[i], EdgeMapReader.Read(Path.Combine(oracleDir, stem + ".png")), o.Refine);
                oracleRefined.Add(ro);
                report[i].OracleRefinedMasks = ro.Count;
            }
            if (o.AdapterPath is not null)
            {
                var r1 = CocoRefinement.RefineImage(image, coarseResults[i], EdgeMapReader.Load(oneStepDir, stem, EdgeScale.Ternary, o.Uncertain).Map, o.Refine);
                oneStepRefined.Add(r1);
                report[i].OneStepRefinedMasks = r1.Count;
            }
            progress?.Invoke(DemoStage.Refine, i + 1, scenes.Count);
        }
        string refinedPath = Path.Combine(dir, "refined_instances.json"), oracleRefinedPath = Path.Combine(dir, "oracle_refined_instances.json");
        CocoFiles.WriteResults(refinedPath, refined.SelectMany(r => r));
        if (o.Oracle) CocoFiles.WriteResults(oracleRefinedPath, oracleRefined.SelectMany(r => r));
        string oneStepRefinedPath = Path.Combine(dir, "onestep_refined_instances.json");
        if (o.AdapterPath is not null) CocoFiles.WriteResults(oneStepRefinedPath, oneStepRefined.SelectMany(r => r));
        Done(DemoStage.Refine);

        // 5. panoptic pseudo-labels from the simulated semantic masks (as `diffegg panoptic`) and the naive baseline
        var cats = SyntheticCategories.All.Select(c => new CocoCategory(c.Id, c.Name, c.Supercategory, c.IsThing ? 1 : 0)).ToList();
        var pseudo = new List<PanopticResult>();
        var naive = new List<PanopticResult>();
        var oraclePseudo = new List<PanopticResult>();
        for (int i = 0; i < scenes.Count; i++)
        {
            var (stem, id, s) = scenes[i];
            var p = PanopticBuilder.Build(semantic[i], s.Width, s.Height, ModelEdges(edgeDir, stem, o), isThing, o.Refine);
            if (o.Oracle)
            {
                var po = PanopticBuilder.Build(semantic[i], s.Width, s.Height, EdgeMapReader.Read(Path.Combine(oracleDir, stem + ".png")), isThing, o.Refine);
                oraclePseudo.Add(po);
                report[i].OraclePseudoThingSegments = po.Segments.Count(x => isThing[x.CategoryId]);
            }
            var nv = NaivePanoptic.Build(semantic[i], s.Width, s.Height, isThing, o.Refine.Connectivity);
            pseudo.Add(p); naive.Add(nv);
            report[i].PseudoThingSegments = p.Segments.Count(x => isThing[x.CategoryId]);
            report[i].NaiveThingSegments = nv.Segments.Count(x => isThing[x.CategoryId]);
            progress?.Invoke(DemoStage.Panoptic, i + 1, scenes.Count);
        }
        string pseudoDir = Path.Combine(dir, "pseudo_panoptic"), naiveDir = Path.Combine(dir, "naive_panoptic");
        WritePanoptic(pseudoDir, scenes.Select(x => (x.Stem, x.Id)).ToList(), pseudo, cats);
        WritePanoptic(naiveDir, scenes.Select(x => (x.Stem, x.Id)).ToList(), naive, cats);
        string oraclePseudoDir = Path.Combine(dir, "oracle_pseudo_panoptic");
        if (o.Oracle) WritePanoptic(oraclePseudoDir, scenes.Select(x => (x.Stem, x.Id)).ToList(), oraclePseudo, cats);
        Done(DemoStage.Panoptic);

        // 6. evaluation against the exact ground truth
        var gt = CocoFiles.ReadInstances(Path.Combine(dataDir, "instances.json"));
        int nEval = (o.Oracle ? 6 : 4) + (o.AdapterPath is null ? 0 : 1), evalDone = 0;
        CocoEvalResult Ap(string path)
        {
            var e = CocoEvaluator.Evaluate(gt, CocoFiles.ReadResults(path, gt), CocoIouType.Segm, resultsName: path);
            progress?.Invoke(DemoStage.Evaluate, ++evalDone, nEval);
            return e;
        }
        var coarseEval = Ap(coarsePath);
        var refinedEval = Ap(refinedPath);
        var oracleRefinedEval = o.Oracle ? Ap(oracleRefinedPath) : null;
        var oneStepRefinedEval = o.AdapterPath is null ? null : Ap(oneStepRefinedPath);
        string gtJson = Path.Combine(dataDir, "panoptic.json"), gtPng = Path.Combine(dataDir, "panoptic");
        var gtPan = PanopticFiles.ReadJson(gtJson, groundTruth: true);
        PanopticEvalResult Pq(string d)
        {
            string j = Path.Combine(d, "panoptic.json");
            var e = PanopticEvaluator.Evaluate(gtPan, gtPng, PanopticFiles.ReadJson(j, groundTruth: false), Path.Combine(d, "panoptic"), gtJson, j);
            progress?.Invoke(DemoStage.Evaluate, ++evalDone, nEval);
            return e;
        }
        var naiveEval = Pq(naiveDir);
        var pseudoEval = Pq(pseudoDir);
        var oraclePseudoEval = o.Oracle ? Pq(oraclePseudoDir) : null;
        Done(DemoStage.Evaluate);

        // 7. report images, metrics.json, index.html
        for (int i = 0; i < scenes.Count; i++)
        {
            var (stem, id, s) = scenes[i];
            var rs = report[i];
            void Save(string key, RgbImage img)
            {
                string rel = $"report/{stem}_{key}.png";
                ImageIO.WriteRgbPng(Path.Combine(dir, "report", $"{stem}_{key}.png"), img);
                rs.Images[key] = rel;
            }
            int w = s.Width, h = s.Height;
            Save("image", s.Image);
            Save("gt_instances", DemoImages.Overlay(s.Image, s.Instances.Select(x => s.MaskOf(x.SegmentId).Select(b => b ? (byte)1 : (byte)0).ToArray()).ToList()));
            Save("edgekl", DemoImages.Heat(edgeValues[i].Edges, w, h));
            Save("ternary", DemoImages.Ternary(edgeValues[i].Ternary, w, h));
            Save("coarse", DemoImages.Overlay(s.Image, coarse[i].Masks.Select(m => m.Pixels).ToList()));
            Save("refined", DemoImages.Overlay(s.Image, refined[i].Select(m => m.Segmentation!.ToRle(h, w).Decode()).ToList()));
            if (o.Oracle) Save("oracle_refined", DemoImages.Overlay(s.Image, oracleRefined[i].Select(m => m.Segmentation!.ToRle(h, w).Decode()).ToList()));
            if (o.AdapterPath is not null)
            {
                Save("onestep", DemoImages.Heat(oneStepValues[i].Edges, w, h));
                Save("onestep_ternary", DemoImages.Ternary(oneStepValues[i].Ternary, w, h));
                Save("onestep_refined", DemoImages.Overlay(s.Image, oneStepRefined[i].Select(m => m.Segmentation!.ToRle(h, w).Decode()).ToList()));
            }
            Save("semantic", DemoImages.Classes(semantic[i], w, h, isThing));
            var gtCat = s.Instances.ToDictionary(x => x.SegmentId, x => x.CategoryId);
            foreach (var st in s.Stuff) gtCat[st.SegmentId] = st.CategoryId;
            Save("gt_panoptic", DemoImages.Panoptic(s.SegmentMap, w, h, gtCat, isThing));
            Save("naive_panoptic", DemoImages.Panoptic(naive[i].SegmentIds, w, h, naive[i].Segments.ToDictionary(x => x.Id, x => x.CategoryId), isThing));
            Save("pseudo_panoptic", DemoImages.Panoptic(pseudo[i].SegmentIds, w, h, pseudo[i].Segments.ToDictionary(x => x.Id, x => x.CategoryId), isThing));
            if (o.Oracle) Save("oracle_pseudo_panoptic", DemoImages.Panoptic(oraclePseudo[i].SegmentIds, w, h, oraclePseudo[i].Segments.ToDictionary(x => x.Id, x => x.CategoryId), isThing));
            progress?.Invoke(DemoStage.Report, i + 1, scenes.Count);
        }
        var result = new DemoResult
        {
            Options = o, ModelPath = modelPath, EmbeddedModel = o.ModelPath is null, ModelFacts = modelFacts, Scenes = report,
            Coarse = coarseEval, Refined = refinedEval, Naive = naiveEval, Pseudo = pseudoEval, StageSeconds = times,
            OracleRefined = oracleRefinedEval, OraclePseudo = oraclePseudoEval, OneStepRefined = oneStepRefinedEval,
        };
        Done(DemoStage.Report);
        HtmlReport.WriteMetrics(result.MetricsPath, result);
        HtmlReport.Write(result.IndexPath, result);
        return result;
    }

    /// <summary>
    /// The edge map Alg 4 gets, as <see cref="DemoOptions.EdgeInput"/> says: the model's files read as <c>diffegg refine --edge-scale
    /// ternary|soft</c> reads them (<see cref="EdgeMapReader.Load"/>), or the Sobel baseline on the scene image.
    /// </summary>
    public static EdgeMap ModelEdges(string edgeDir, string stem, DemoOptions o)
    {
        if (o.EdgeInput == DemoEdgeInput.Sobel)
        {
            var img = ImageIO.ReadRgb(Path.Combine(o.OutDir, "data", "images", stem + ".png"));
            return new EdgeMap(img.Width, img.Height, TernaryEdges.Soft(SobelEdges.Compute(img, 1.5, SobelChannels.MaxChannel), o.Ternary));
        }
        return EdgeMapReader.Load(edgeDir, stem, o.EdgeInput == DemoEdgeInput.Soft ? EdgeScale.Soft : EdgeScale.Ternary, o.Uncertain).Map;
    }

    /// <summary>Oracle edge map: 255 on every pixel with a 4-neighbour of another ground-truth segment (both sides of each boundary), else 0.</summary>
    public static byte[] GroundTruthBoundaries(int[] segmentMap, int w, int h)
    {
        var e = new byte[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x, v = segmentMap[i];
                if ((x > 0 && segmentMap[i - 1] != v) || (x + 1 < w && segmentMap[i + 1] != v) || (y > 0 && segmentMap[i - w] != v) || (y + 1 < h && segmentMap[i + w] != v))
                    e[i] = 255;
            }
        return e;
    }

    /// <summary>Seed of one simulation stream (kind 1 = coarse masks, 2 = weak semantic) of one image.</summary>
    public static ulong StreamSeed(long seed, long imageId, int kind) =>
        Xoshiro256.Mix(Xoshiro256.Mix((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)imageId) + (ulong)kind);

    static void WritePanoptic(string dir, List<(string Stem, long Id)> images, List<PanopticResult> results, List<CocoCategory> cats)
    {
        string png = Path.Combine(dir, "panoptic");
        Directory.CreateDirectory(png);
        var ds = new PanopticDataset { Categories = cats };
        for (int i = 0; i < images.Count; i++)
        {
            var r = results[i];
            PanopticFiles.WritePng(Path.Combine(png, images[i].Stem + ".png"), r.SegmentIds, r.Width, r.Height);
            ds.Images.Add(new CocoImage(images[i].Id, r.Width, r.Height, images[i].Stem + ".png"));
            ds.Annotations.Add(r.ToAnnotation(images[i].Id, images[i].Stem + ".png"));
        }
        PanopticFiles.WriteJson(Path.Combine(dir, "panoptic.json"), ds);
    }

    /// <summary>The UNet's parameter count, and steps and minutes of training from the folder's <c>training/loss.csv</c> (last row) when there is one.</summary>
    static string ModelFacts(string modelPath, DiffusionModelFolder model)
    {
        long parameters = model.Unet.parameters().Sum(p => p.numel());
        string facts = parameters >= 1_000_000 ? $"{parameters / 1e6:F2} M UNet parameters" : $"{parameters:N0} UNet parameters";
        string log = Path.Combine(modelPath, "training", "loss.csv");
        if (!File.Exists(log)) return facts;
        string? last = File.ReadLines(log).Skip(1).LastOrDefault(l => l.Length > 0);
        var cells = last?.Split(',');
        if (cells is { Length: >= 4 } && int.TryParse(cells[0], System.Globalization.CultureInfo.InvariantCulture, out int steps)
            && double.TryParse(cells[^1], System.Globalization.CultureInfo.InvariantCulture, out double seconds))
            facts += $", trained for {steps:N0} steps in {seconds / 60:F0} minutes (its training/loss.csv)";
        return facts;
    }
}
