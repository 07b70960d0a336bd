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

    /// <summary>The files and folders of one demo run under <see cref="DemoOptions.OutDir"/>.</summary>
    sealed class DemoPaths(string dir)
    {
        public string Dir { get; } = dir;
        public string Data { get; } = Path.Combine(dir, "data");
        public string Edges { get; } = Path.Combine(dir, "edges");
        public string OneStepEdges { get; } = Path.Combine(dir, "edges-onestep");
        public string Report { get; } = Path.Combine(dir, "report");
        public string Semantic { get; } = Path.Combine(dir, "simulated_semantic");
        public string OracleEdges { get; } = Path.Combine(dir, "oracle_edges");
        public string Coarse { get; } = Path.Combine(dir, "simulated_coarse_instances.json");
        public string Refined { get; } = Path.Combine(dir, "refined_instances.json");
        public string OracleRefined { get; } = Path.Combine(dir, "oracle_refined_instances.json");
        public string OneStepRefined { get; } = Path.Combine(dir, "onestep_refined_instances.json");
        public string Pseudo { get; } = Path.Combine(dir, "pseudo_panoptic");
        public string Naive { get; } = Path.Combine(dir, "naive_panoptic");
        public string OraclePseudo { get; } = Path.Combine(dir, "oracle_pseudo_panoptic");
        public string ImagePath(string stem) => Path.Combine(Data, "images", stem + ".png");
        public string OracleEdgesPath(string stem) => Path.Combine(OracleEdges, stem + ".png");
    }

    /// <summary>One synthetic test scene: file stem, COCO image id and the scene with its exact ground truth.</summary>
    sealed record DemoInput(string Stem, long Id, Scene Scene);

    /// <summary>Stage 2: the model's edges of each scene (and the one-step edges with an adapter) as flat arrays.</summary>
    sealed record EdgeStage(List<DemoScene> Report, List<(float[] Edges, sbyte[] Ternary)> EdgeValues, List<(float[] Edges, sbyte[] Ternary)> OneStepValues, string ModelFacts);

    /// <summary>Stage 3: simulated coarse instance masks (also as COCO results) and weak semantic masks.</summary>
    sealed record SimulationStage(List<CoarseSimulation> Coarse, List<List<CocoResult>> CoarseResults, List<byte[]> Semantic);

    /// <summary>Stage 4: refined masks per scene with the model's, the oracle's and the one-step edges (empty lists when off).</summary>
    sealed record RefineStage(List<List<CocoResult>> Refined, List<List<CocoResult>> OracleRefined, List<List<CocoResult>> OneStepRefined);

    /// <summary>Stage 5: panoptic pseudo-labels with the model's and the oracle's edges, and the naive baseline.</summary>
    sealed record PanopticStage(List<PanopticResult> Pseudo, List<PanopticResult> Naive, List<PanopticResult> OraclePseudo);

    /// <summary>Stage 6: COCO AP/AR and PQ against the exact ground truth (null where the variant is off).</summary>
    sealed record EvaluationStage(CocoEvalResult Coarse, CocoEvalResult Refined, CocoEvalResult? OracleRefined, CocoEvalResult? OneStepRefined,
        PanopticEvalResult Naive, PanopticEvalResult Pseudo, PanopticEvalResult? OraclePseudo);

    /// <summary>The stages in order (<see cref="DemoStage"/>), each timed; writes metrics.json and index.html.</summary>
    static DemoResult RunStages(DemoOptions options, string modelPath, Action<DemoStage, int, int>? progress)
    {
        var times = new Dictionary<DemoStage, double>();
        var clock = Stopwatch.StartNew();
        void Done(DemoStage stage) { times[stage] = clock.Elapsed.TotalSeconds; clock.Restart(); }
        var paths = new DemoPaths(options.OutDir);
        Directory.CreateDirectory(paths.Dir);
        Directory.CreateDirectory(paths.Report);

        var scenes = WriteScenes(options, paths, progress);
        var isThing = SyntheticCategories.All.ToDictionary(c => c.Id, c => c.IsThing);
        Done(DemoStage.Data);
        var edges = ComputeEdges(options, modelPath, paths, scenes, progress);
        Done(DemoStage.Edges);
        var simulation = SimulateMasks(options, paths, scenes, edges.Report, progress);
        Done(DemoStage.Simulate);
        var refinement = RefineCoarseMasks(options, paths, scenes, simulation, edges.Report, progress);
        Done(DemoStage.Refine);
        var panoptic = BuildPanoptic(options, paths, scenes, simulation, edges.Report, isThing, progress);
        Done(DemoStage.Panoptic);
        var evaluation = Evaluate(options, paths, progress);
        Done(DemoStage.Evaluate);

        // 7. report images, metrics.json, index.html
        for (int i = 0; i < scenes.Count; i++)
        {
            WriteReportImages(options, paths, scenes[i], edges.Report[i], i, edges, simulation, refinement, panoptic, isThing);
            progress?.Invoke(DemoStage.Report, i + 1, scenes.Count);
        }
        var result = new DemoResult
        {
            Options = options, ModelPath = modelPath, EmbeddedModel = options.ModelPath is null, ModelFacts = edges.ModelFacts, Scenes = edges.Report,
            Coarse = evaluation.Coarse, Refined = evaluation.Refined, Naive = evaluation.Naive, Pseudo = evaluation.Pseudo, StageSeconds = times,
            OracleRefined = evaluation.OracleRefined, OraclePseudo = evaluation.OraclePseudo, OneStepRefined = evaluation.OneStepRefined,
        };
        Done(DemoStage.Report);
        HtmlReport.WriteMetrics(result.MetricsPath, result);
        HtmlReport.Write(result.IndexPath, result);
        return result;
    }

    /// <summary>1. Synthetic test scenes with exact ground truth, written as a dataset (images, instances.json, panoptic).</summary>
    static List<DemoInput> WriteScenes(DemoOptions options, DemoPaths paths, Action<DemoStage, int, int>? progress)
    {
        var sceneOptions = new SceneOptions { Size = options.Size };
        var summary = SyntheticDatasetWriter.Write(paths.Data, sceneOptions, options.Seed, SyntheticSplit.Test, 0, options.Count, d => progress?.Invoke(DemoStage.Data, d, options.Count));
        if (summary.Failed.Count > 0) throw new DiffEggException($"{paths.Data}: {summary.Failed.Count} scene(s) could not be written: {summary.Failed[0]}");
        var generator = new SceneGenerator(sceneOptions);
        return Enumerable.Range(0, options.Count).Select(i => new DemoInput(SyntheticDataset.FileStem(SyntheticSplit.Test, i), SyntheticDataset.ImageId(SyntheticSplit.Test, i),
            generator.Generate(options.Seed, SyntheticSplit.Test, i))).ToList();
    }

    /// <summary>2. Edges with the model (same pipeline and files as <c>diffegg edges</c>), and the one-step edges with an adapter.</summary>
    static EdgeStage ComputeEdges(DemoOptions options, string modelPath, DemoPaths paths, List<DemoInput> scenes, Action<DemoStage, int, int>? progress)
    {
        var report = new List<DemoScene>();
        var edgeValues = new List<(float[] Edges, sbyte[] Ternary)>();
        var oneStepValues = new List<(float[] Edges, sbyte[] Ternary)>();
        using var model = DiffusionModelFolder.Load(modelPath, CPU);
        string modelFacts = ModelFacts(modelPath, model);
        var pipelineOptions = new EdgePipelineOptions { Timesteps = options.Timesteps, Size = options.Size, Seed = options.Seed, Ternary = options.Ternary };
        using var pipeline = new EdgePipeline(model, pipelineOptions);   // checks Timesteps and Size against the model (InvalidOptionException)
        using var adapter = options.AdapterPath is null ? null : FineTuning.EdgeAdapter.Load(options.AdapterPath, model.Unet);
        using var oneStep = adapter is null ? null : new FineTuning.OneStepEdgePipeline(model, adapter, pipelineOptions with { Size = adapter.Size ?? options.Size });
        for (int i = 0; i < scenes.Count; i++)
        {
            var (stem, id, scene) = scenes[i];
            using var scope = torch.NewDisposeScope();
            using var edges = pipeline.Run(scene.Image);
            pipeline.Write(edges, paths.Edges, stem, paths.ImagePath(stem));
            edgeValues.Add((edges.Edges.contiguous().data<float>().ToArray(), edges.Ternary.contiguous().data<sbyte>().ToArray()));
            report.Add(new DemoScene { Stem = stem, ImageId = id, Timesteps = edges.Timesteps, KlCurve = edges.KlCurve, ChosenTimestep = edges.ChosenTimestep });
            if (oneStep is not null)
            {
                using var oneStepEdges = oneStep.Run(scene.Image);
                oneStep.Write(oneStepEdges, paths.OneStepEdges, stem, paths.ImagePath(stem));
                oneStepValues.Add((oneStepEdges.Edges.contiguous().data<float>().ToArray(), oneStepEdges.Ternary.contiguous().data<sbyte>().ToArray()));
            }
            progress?.Invoke(DemoStage.Edges, i + 1, scenes.Count);
        }
        return new EdgeStage(report, edgeValues, oneStepValues, modelFacts);
    }

    /// <summary>3. Simulated coarse instance masks and simulated weak semantic masks (and the oracle's ground-truth boundary edges).</summary>
    static SimulationStage SimulateMasks(DemoOptions options, DemoPaths paths, List<DemoInput> scenes, List<DemoScene> report, Action<DemoStage, int, int>? progress)
    {
        var coarse = new List<CoarseSimulation>();
        var semantic = new List<byte[]>();
        Directory.CreateDirectory(paths.Semantic);
        if (options.Oracle) Directory.CreateDirectory(paths.OracleEdges);
        for (int i = 0; i < scenes.Count; i++)
        {
            var (stem, id, scene) = scenes[i];
            var instances = scene.Instances.Select(x => (x.SegmentId, x.CategoryId)).ToList();
            var simulated = CoarseMaskSimulator.Simulate(scene.SegmentMap, scene.Width, scene.Height, instances, StreamSeed(options.Seed, id, 1), options.Coarse);
            coarse.Add(simulated);
            report[i].GtInstances = instances.Count; report[i].TouchingPairs = simulated.TouchingPairs; report[i].Merges = simulated.Merges;
            report[i].Fragmented = simulated.Fragmented; report[i].CoarseMasks = simulated.Masks.Count;
            var weak = WeakSemanticSimulator.Simulate(scene.ClassMap, scene.Width, scene.Height, StreamSeed(options.Seed, id, 2), options.Semantic);
            semantic.Add(weak);
            PanopticFiles.WriteClassIdPng(Path.Combine(paths.Semantic, stem + ".png"), weak, scene.Width, scene.Height);
            if (options.Oracle) ImageIO.WriteGrayPng(paths.OracleEdgesPath(stem), GroundTruthBoundaries(scene.SegmentMap, scene.Width, scene.Height), scene.Width, scene.Height);
            progress?.Invoke(DemoStage.Simulate, i + 1, scenes.Count);
        }
        var coarseResults = scenes.Select((x, i) => coarse[i].Masks.Select(m => CocoRefinement.ToResult(x.Id, new InstanceMask(x.Scene.Width, x.Scene.Height, m.Pixels, m.CategoryId, m.Score))).ToList()).ToList();
        CocoFiles.WriteResults(paths.Coarse, coarseResults.SelectMany(r => r));
        return new SimulationStage(coarse, coarseResults, semantic);
    }

    /// <summary>4. Refinement of the simulated coarse masks with the edge maps (Alg 4, as <c>diffegg refine</c>): model, oracle and one-step edges.</summary>
    static RefineStage RefineCoarseMasks(DemoOptions options, DemoPaths paths, List<DemoInput> scenes, SimulationStage simulation, List<DemoScene> report, Action<DemoStage, int, int>? progress)
    {
        var refined = new List<List<CocoResult>>();
        var oracleRefined = new List<List<CocoResult>>();
        var oneStepRefined = new List<List<CocoResult>>();
        for (int i = 0; i < scenes.Count; i++)
        {
            var (stem, id, scene) = scenes[i];
            var image = new CocoImage(id, scene.Width, scene.Height, stem + ".png");
            var withModel = CocoRefinement.RefineImage(image, simulation.CoarseResults[i], ModelEdges(paths.Edges, stem, options), options.Refine);
            refined.Add(withModel);
            report[i].RefinedMasks = withModel.Count;
            if (options.Oracle)
            {
                var withOracle = CocoRefinement.RefineImage(image, simulation.CoarseResults[i], EdgeMapReader.Read(paths.OracleEdgesPath(stem)), options.Refine);
                oracleRefined.Add(withOracle);
                report[i].OracleRefinedMasks = withOracle.Count;
            }
            if (options.AdapterPath is not null)
            {
                var withOneStep = CocoRefinement.RefineImage(image, simulation.CoarseResults[i], EdgeMapReader.Load(paths.OneStepEdges, stem, EdgeScale.Ternary, options.Uncertain).Map, options.Refine);
                oneStepRefined.Add(withOneStep);
                report[i].OneStepRefinedMasks = withOneStep.Count;
            }
            progress?.Invoke(DemoStage.Refine, i + 1, scenes.Count);
        }
        CocoFiles.WriteResults(paths.Refined, refined.SelectMany(r => r));
        if (options.Oracle) CocoFiles.WriteResults(paths.OracleRefined, oracleRefined.SelectMany(r => r));
        if (options.AdapterPath is not null) CocoFiles.WriteResults(paths.OneStepRefined, oneStepRefined.SelectMany(r => r));
        return new RefineStage(refined, oracleRefined, oneStepRefined);
    }

    /// <summary>5. Panoptic pseudo-labels from the simulated semantic masks (as <c>diffegg panoptic</c>) and the naive baseline.</summary>
    static PanopticStage BuildPanoptic(DemoOptions options, DemoPaths paths, List<DemoInput> scenes, SimulationStage simulation, List<DemoScene> report,
        Dictionary<int, bool> isThing, Action<DemoStage, int, int>? progress)
    {
        var categories = SyntheticCategories.All.Select(c => new CocoCategory(c.Id, c.Name, c.Supercategory, c.IsThing ? 1 : 0)).ToList();
        var pseudo = new List<PanopticResult>();
        var naive = new List<PanopticResult>();
        var oraclePseudo = new List<PanopticResult>();
        for (int i = 0; i < scenes.Count; i++)
        {
            var (stem, _, scene) = scenes[i];
            var semantic = simulation.Semantic[i];
            var withModel = PanopticBuilder.Build(semantic, scene.Width, scene.Height, ModelEdges(paths.Edges, stem, options), isThing, options.Refine);
            if (options.Oracle)
            {
                var withOracle = PanopticBuilder.Build(semantic, scene.Width, scene.Height, EdgeMapReader.Read(paths.OracleEdgesPath(stem)), isThing, options.Refine);
                oraclePseudo.Add(withOracle);
                report[i].OraclePseudoThingSegments = withOracle.Segments.Count(x => isThing[x.CategoryId]);
            }
            var naiveResult = NaivePanoptic.Build(semantic, scene.Width, scene.Height, isThing, options.Refine.Connectivity);
            pseudo.Add(withModel); naive.Add(naiveResult);
            report[i].PseudoThingSegments = withModel.Segments.Count(x => isThing[x.CategoryId]);
            report[i].NaiveThingSegments = naiveResult.Segments.Count(x => isThing[x.CategoryId]);
            progress?.Invoke(DemoStage.Panoptic, i + 1, scenes.Count);
        }
        var images = scenes.Select(x => (x.Stem, x.Id)).ToList();
        WritePanoptic(paths.Pseudo, images, pseudo, categories);
        WritePanoptic(paths.Naive, images, naive, categories);
        if (options.Oracle) WritePanoptic(paths.OraclePseudo, images, oraclePseudo, categories);
        return new PanopticStage(pseudo, naive, oraclePseudo);
    }

    /// <summary>6. Evaluation of the written files against the exact ground truth: COCO mask AP/AR, then PQ.</summary>
    static EvaluationStage Evaluate(DemoOptions options, DemoPaths paths, Action<DemoStage, int, int>? progress)
    {
        var gt = CocoFiles.ReadInstances(Path.Combine(paths.Data, "instances.json"));
        int evalCount = (options.Oracle ? 6 : 4) + (options.AdapterPath is null ? 0 : 1), evalDone = 0;
        CocoEvalResult Ap(string path)
        {
            var e = CocoEvaluator.Evaluate(gt, CocoFiles.ReadResults(path, gt), CocoIouType.Segm, resultsName: path);
            progress?.Invoke(DemoStage.Evaluate, ++evalDone, evalCount);
            return e;
        }
        var coarse = Ap(paths.Coarse);
        var refined = Ap(paths.Refined);
        var oracleRefined = options.Oracle ? Ap(paths.OracleRefined) : null;
        var oneStepRefined = options.AdapterPath is null ? null : Ap(paths.OneStepRefined);
        string gtJson = Path.Combine(paths.Data, "panoptic.json"), gtPng = Path.Combine(paths.Data, "panoptic");
        var gtPanoptic = PanopticFiles.ReadJson(gtJson, groundTruth: true);
        PanopticEvalResult Pq(string dir)
        {
            string json = Path.Combine(dir, "panoptic.json");
            var e = PanopticEvaluator.Evaluate(gtPanoptic, gtPng, PanopticFiles.ReadJson(json, groundTruth: false), Path.Combine(dir, "panoptic"), gtJson, json);
            progress?.Invoke(DemoStage.Evaluate, ++evalDone, evalCount);
            return e;
        }
        var naive = Pq(paths.Naive);
        var pseudo = Pq(paths.Pseudo);
        var oraclePseudo = options.Oracle ? Pq(paths.OraclePseudo) : null;
        return new EvaluationStage(coarse, refined, oracleRefined, oneStepRefined, naive, pseudo, oraclePseudo);
    }

    /// <summary>7. The report images of scene <paramref name="index"/>, recorded in <paramref name="sceneReport"/>.</summary>
    static void WriteReportImages(DemoOptions options, DemoPaths paths, DemoInput input, DemoScene sceneReport, int index, EdgeStage edges, SimulationStage simulation,
        RefineStage refinement, PanopticStage panoptic, Dictionary<int, bool> isThing)
    {
        var (stem, _, scene) = input;
        void Save(string key, RgbImage img)
        {
            string rel = $"report/{stem}_{key}.png";
            ImageIO.WriteRgbPng(Path.Combine(paths.Dir, "report", $"{stem}_{key}.png"), img);
            sceneReport.Images[key] = rel;
        }
        int width = scene.Width, height = scene.Height;
        Save("image", scene.Image);
        Save("gt_instances", DemoImages.Overlay(scene.Image, scene.Instances.Select(x => scene.MaskOf(x.SegmentId).Select(b => b ? (byte)1 : (byte)0).ToArray()).ToList()));
        Save("edgekl", DemoImages.Heat(edges.EdgeValues[index].Edges, width, height));
        Save("ternary", DemoImages.Ternary(edges.EdgeValues[index].Ternary, width, height));
        Save("coarse", DemoImages.Overlay(scene.Image, simulation.Coarse[index].Masks.Select(m => m.Pixels).ToList()));
        Save("refined", DemoImages.Overlay(scene.Image, refinement.Refined[index].Select(m => m.Segmentation!.ToRle(height, width).Decode()).ToList()));
        if (options.Oracle) Save("oracle_refined", DemoImages.Overlay(scene.Image, refinement.OracleRefined[index].Select(m => m.Segmentation!.ToRle(height, width).Decode()).ToList()));
        if (options.AdapterPath is not null)
        {
            Save("onestep", DemoImages.Heat(edges.OneStepValues[index].Edges, width, height));
            Save("onestep_ternary", DemoImages.Ternary(edges.OneStepValues[index].Ternary, width, height));
            Save("onestep_refined", DemoImages.Overlay(scene.Image, refinement.OneStepRefined[index].Select(m => m.Segmentation!.ToRle(height, width).Decode()).ToList()));
        }
        Save("semantic", DemoImages.Classes(simulation.Semantic[index], width, height, isThing));
        var gtCat = scene.Instances.ToDictionary(x => x.SegmentId, x => x.CategoryId);
        foreach (var st in scene.Stuff) gtCat[st.SegmentId] = st.CategoryId;
        Save("gt_panoptic", DemoImages.Panoptic(scene.SegmentMap, width, height, gtCat, isThing));
        var (naive, pseudo, oraclePseudo) = (panoptic.Naive, panoptic.Pseudo, panoptic.OraclePseudo);
        Save("naive_panoptic", DemoImages.Panoptic(naive[index].SegmentIds, width, height, naive[index].Segments.ToDictionary(x => x.Id, x => x.CategoryId), isThing));
        Save("pseudo_panoptic", DemoImages.Panoptic(pseudo[index].SegmentIds, width, height, pseudo[index].Segments.ToDictionary(x => x.Id, x => x.CategoryId), isThing));
        if (options.Oracle) Save("oracle_pseudo_panoptic", DemoImages.Panoptic(oraclePseudo[index].SegmentIds, width, height, oraclePseudo[index].Segments.ToDictionary(x => x.Id, x => x.CategoryId), isThing));
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
