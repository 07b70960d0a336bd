using DiffEgg.Attention;
using System.Globalization;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.Formats;
using DiffEgg.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Evaluation;

/// <summary>A Sobel baseline row of an edge benchmark: channel mode and Gaussian blur σ.</summary>
public sealed record SobelVariant(SobelChannels Channels, double Blur)
{
    /// <summary>Row label, e.g. <c>sobel-max, blur 1.5</c>.</summary>
    public string Label => (Channels == SobelChannels.MaxChannel ? "sobel-max" : "sobel") +
                           (Blur > 0 ? ", blur " + Blur.ToString(CultureInfo.InvariantCulture) : "");
}

/// <summary>Options of <see cref="EdgeBenchmark.RunDiffEgg"/> and <see cref="EdgeBenchmark.RunSobel"/>.</summary>
public sealed record EdgeBenchmarkOptions
{
    /// <summary>Timesteps τ₁ &gt; … &gt; τ_N scanned by PeakKL (Alg 1); empty = no PeakKL rows.</summary>
    public int[] Timesteps { get; init; } = EdgePipelineOptions.DefaultTimesteps.ToArray();
    /// <summary>Single timesteps whose accumulated map is scored directly (no PeakKL).</summary>
    public int[] FixedTimesteps { get; init; } = { 10, 50, 100, 200 };
    /// <summary>EdgeKL row divergences (Eq 6 / Table F), each applied to the PeakKL map and to every fixed-timestep map.</summary>
    public EdgeMetric[] Metrics { get; init; } = { EdgeMetric.KL, EdgeMetric.JSD, EdgeMetric.L2, EdgeMetric.Cosine };
    /// <summary>Sobel baselines scored on the same scenes at the same resolution.</summary>
    public SobelVariant[] Sobel { get; init; } = { new(SobelChannels.Grey, 1.5), new(SobelChannels.MaxChannel, 1.5) };
    /// <summary>Seed of the noise ε (the same ε at every timestep).</summary>
    public long Seed { get; init; }
    /// <summary>Long side of the processed image; 0 = the scene's own size.</summary>
    public int Size { get; init; }
    /// <summary>Every map is resampled (bilinear) to EdgeSize × EdgeSize before scoring; 0 = the attention grid (DiffEGG runs) or the image size (Sobel-only runs).</summary>
    public int EdgeSize { get; init; }
    /// <summary>Scoring options; its <see cref="EdgeQualityOptions.Ternary"/> is replaced by each of <see cref="Rules"/>.</summary>
    public EdgeQualityOptions Quality { get; init; } = new();
    /// <summary>Ternary rules (Alg 2) whose edge class binarises every map; each method gets one row per rule (labelled with the rule when there are several).</summary>
    public TernaryRule[] Rules { get; init; } = { TernaryRule.Default };
}

/// <summary>One row of an edge benchmark: a method (EdgeKL variant or Sobel baseline) and its dataset-level scores.</summary>
public sealed record EdgeBenchmarkRow(string Method, EdgeMetric? Metric, int? FixedTimestep, bool PeakKL, EdgeSummary Summary)
{
    /// <summary>Ternary rule whose edge class was scored.</summary>
    public TernaryRule Ternary { get; init; } = TernaryRule.Default;
}

/// <summary>Result of an edge benchmark run: one row per method, PeakKL's chosen-timestep histogram and the failed scenes.</summary>
public sealed class EdgeBenchmarkReport
{
    public required IReadOnlyList<EdgeBenchmarkRow> Rows { get; init; }
    /// <summary>Chosen timestep τ_{n*} → number of scenes (empty without PeakKL rows).</summary>
    public required IReadOnlyDictionary<int, int> ChosenTimesteps { get; init; }
    /// <summary>Scene name and error message of every scene that could not be scored (left out of every row).</summary>
    public required IReadOnlyList<(string Name, string Error)> Failed { get; init; }
    public required int Scenes { get; init; }
    /// <summary>Compared resolution ("32x32"; "mixed" if the scenes differ; "-" if none was scored).</summary>
    public required string Resolution { get; init; }
    /// <summary>Wall-clock seconds of the scene loop (reading, model passes, edge maps, scoring), without loading the model.</summary>
    public double Seconds { get; init; }
}

public static partial class EdgeBenchmark
{
    /// <summary>
    /// Scores DiffEGG edges on benchmark scenes: per scene ONE UNet pass per distinct timestep (PeakKL list ∪ fixed list) with an
    /// accumulated attention map (Eq 11-12); PeakKL (Alg 1) over the listed timesteps; EdgeKL (Eq 6) with every metric on the PeakKL map
    /// and on each fixed-timestep map; plus the Sobel baselines; all at the same resolution, scored by <see cref="EdgeQuality.Score"/>.
    /// <paramref name="progress"/> is called after each scene with its name and the error (null on success).
    /// </summary>
    /// <param name="oneStep">if given, one more row "DiffEGG one-step (adapter)": the one-step edge probability map (Alg 3) of each scene,
    /// resampled to the same grid as the other rows (the attention grid by default; the image size when there are no attention rows)</param>
    public static EdgeBenchmarkReport RunDiffEgg(DiffusionModelFolder model, IReadOnlyList<EdgeBenchItem> items, EdgeBenchmarkOptions options,
        Action<string, string?>? progress = null, FineTuning.OneStepEdgePipeline? oneStep = null)
    {
        var o = options;
        if (o.Metrics.Length == 0 && o.Sobel.Length == 0 && oneStep is null) throw new ArgumentException("nothing to score: no metric, no Sobel variant and no adapter");
        if (o.Metrics.Length > 0 && o.Timesteps.Length == 0 && o.FixedTimesteps.Length == 0 && oneStep is null)
            throw new ArgumentException("metrics were given but neither PeakKL timesteps nor fixed timesteps");
        int T = model.Scheduler.NumTrainTimesteps;
        foreach (int t in o.FixedTimesteps)
            if (t < 0 || t >= T) throw new InvalidOptionException(nameof(o.FixedTimesteps), $"timestep {t} is outside the model's schedule [0, {T})");
        if (o.FixedTimesteps.Distinct().Count() != o.FixedTimesteps.Length)
            throw new InvalidOptionException(nameof(o.FixedTimesteps), $"{string.Join(",", o.FixedTimesteps)} contain a duplicate");
        if (o.EdgeSize < 0) throw new InvalidOptionException(nameof(o.EdgeSize), $"must be >= 0, got {o.EdgeSize}");
        CheckRules(o);
        bool peakRows = o.Timesteps.Length > 0 && o.Metrics.Length > 0;

        // The pipeline validates the PeakKL list (range, strictly decreasing) and computes the null conditioning once.
        using var pipeline = new EdgePipeline(model, new EdgePipelineOptions
        {
            Timesteps = o.Timesteps.Length > 0 ? o.Timesteps : o.FixedTimesteps.Length > 0 ? new[] { o.FixedTimesteps[0] } : new[] { 0 },
            Seed = o.Seed,
            Size = o.Size,
        });
        var fixedTs = o.Metrics.Length > 0 ? o.FixedTimesteps : Array.Empty<int>();
        var peakTs = peakRows ? o.Timesteps : Array.Empty<int>();
        // Every distinct timestep once, noisiest first (PeakKL's order).
        var allTs = peakTs.Concat(fixedTs).Distinct().OrderByDescending(t => t).ToArray();

        var rows = new List<(string Method, EdgeMetric? Metric, int? Fixed, bool Peak)>();
        if (peakRows) foreach (var m in o.Metrics) rows.Add(($"DiffEGG PeakKL, {MetricName(m)}", m, null, true));
        foreach (int t in fixedTs) foreach (var m in o.Metrics) rows.Add(($"DiffEGG t = {t}, {MetricName(m)}", m, t, false));
        int oneStepRow = -1;
        if (oneStep is not null)
        {
            oneStepRow = rows.Count;
            rows.Add(("DiffEGG one-step (adapter)", null, null, false));
            rows.Add(("DiffEGG one-step skeleton (written)", null, null, false));
        }
        foreach (var sv in o.Sobel) rows.Add((sv.Label, null, null, false));
        var scores = rows.Select(_ => o.Rules.Select(_ => new List<EdgeScores>()).ToArray()).ToArray();
        var hist = new SortedDictionary<int, int>();
        var failed = new List<(string, string)>();
        var resolutions = new HashSet<string>();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        ForEachScene(items, failed, progress, (it, img, ids, gw, gh) =>
        {
            var maps = new float[rows.Count][];
            int ah = 0, aw = 0, chosen = -1;
            using (var input = pipeline.Prepare(img))
            using (var peak = new PeakKL())
            {
                foreach (int t in allTs)
                {
                    var map = pipeline.CaptureAttention(input, t);
                    ah = map.Height; aw = map.Width;
                    for (int r = 0; r < rows.Count; r++)
                        if (rows[r].Fixed == t) maps[r] = EdgeMap(map, rows[r].Metric!.Value);
                    if (Array.IndexOf(peakTs, t) >= 0) peak.Add(t, map);   // PeakKL owns it from here
                    else map.Dispose();
                }
                if (peakRows)
                {
                    using var res = peak.Result();
                    chosen = res.PeakTimestep;
                    for (int r = 0; r < rows.Count; r++)
                        if (rows[r].Peak) maps[r] = EdgeMap(res.Peak, rows[r].Metric!.Value);
                }
            }
            int th = o.EdgeSize > 0 ? o.EdgeSize : ah, tw = o.EdgeSize > 0 ? o.EdgeSize : aw;
            if (th == 0) (th, tw) = (img.Height, img.Width); // Sobel / one-step rows only
            int firstSobel = rows.Count - o.Sobel.Length;
            for (int r = 0; r < rows.Count; r++)
            {
                if (r == oneStepRow)
                {
                    using var one = oneStep!.Run(img);
                    maps[r] = ResampleTo(one.Edges.contiguous().data<float>().ToArray(), img.Height, img.Width, th, tw);
                    maps[r + 1] = CoverTo(one.Ternary.contiguous().data<sbyte>().ToArray().Select(v => v == 1).ToArray(), img.Height, img.Width, th, tw);
                    r++;
                }
                else maps[r] = r >= firstSobel ? SobelAt(img, o.Sobel[r - firstSobel], th, tw) : ResampleTo(maps[r], ah, aw, th, tw);
            }
            var sceneScores = ScoreAll(maps, th, tw, ids, gh, gw, it.HardPairs, o, it.Things);
            for (int r = 0; r < rows.Count; r++) for (int k = 0; k < o.Rules.Length; k++) scores[r][k].Add(sceneScores[r][k]);
            if (chosen >= 0) hist[chosen] = hist.GetValueOrDefault(chosen) + 1;
            resolutions.Add($"{sceneScores[0][0].Height}x{sceneScores[0][0].Width}");
        });
        return Report(Rows(rows.Select(r => (r.Method, r.Metric, r.Fixed, r.Peak)).ToList(), scores, o),
            hist, failed, items.Count, resolutions, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Scores Sobel baselines only (no model): each map is computed on the scene image and resampled to <see cref="EdgeBenchmarkOptions.EdgeSize"/> (0 = image size).</summary>
    public static EdgeBenchmarkReport RunSobel(IReadOnlyList<EdgeBenchItem> items, EdgeBenchmarkOptions options, Action<string, string?>? progress = null)
    {
        var o = options;
        if (o.Sobel.Length == 0) throw new ArgumentException("no Sobel variant to score");
        if (o.EdgeSize < 0) throw new ArgumentException($"edge size {o.EdgeSize} must be >= 0");
        CheckRules(o);
        var scores = o.Sobel.Select(_ => o.Rules.Select(_ => new List<EdgeScores>()).ToArray()).ToArray();
        var failed = new List<(string, string)>();
        var resolutions = new HashSet<string>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        ForEachScene(items, failed, progress, (it, img, ids, gw, gh) =>
        {
            int th = o.EdgeSize > 0 ? o.EdgeSize : img.Height, tw = o.EdgeSize > 0 ? o.EdgeSize : img.Width;
            var sceneScores = ScoreAll(o.Sobel.Select(sv => SobelAt(img, sv, th, tw)).ToArray(), th, tw, ids, gh, gw, it.HardPairs, o, it.Things);
            for (int r = 0; r < scores.Length; r++) for (int k = 0; k < o.Rules.Length; k++) scores[r][k].Add(sceneScores[r][k]);
            resolutions.Add($"{sceneScores[0][0].Height}x{sceneScores[0][0].Width}");
        });
        return Report(Rows(o.Sobel.Select(sv => (sv.Label, (EdgeMetric?)null, (int?)null, false)).ToList(), scores, o),
            new SortedDictionary<int, int>(), failed, items.Count, resolutions, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Reads each scene's image and panoptic ids and scores it; a scene whose input or scoring fails with a user-facing error is recorded in <paramref name="failed"/> and skipped. Reports every scene to <paramref name="progress"/>.</summary>
    static void ForEachScene(IReadOnlyList<EdgeBenchItem> items, List<(string, string)> failed, Action<string, string?>? progress,
        Action<EdgeBenchItem, RgbImage, int[], int, int> score)
    {
        foreach (var it in items)
        {
            string? error = null;
            try
            {
                var img = ImageIO.ReadRgb(it.ImagePath);
                var ids = PanopticFiles.ReadPng(it.PanopticPath, out int gw, out int gh);
                score(it, img, ids, gw, gh);
            }
            catch (Exception e) when (e is DiffEggException or IOException or InvalidDataException or UnauthorizedAccessException)
            {
                error = e.Message;
                failed.Add((it.Name, e.Message));
            }
            progress?.Invoke(it.Name, error);
        }
    }

    /// <summary>A Sobel baseline map of the scene image resampled to th × tw.</summary>
    static float[] SobelAt(RgbImage img, SobelVariant sv, int th, int tw) =>
        ResampleTo(SobelEdges.Compute(img, sv.Blur, sv.Channels), img.Height, img.Width, th, tw);

    static EdgeBenchmarkReport Report(List<EdgeBenchmarkRow> rows, SortedDictionary<int, int> hist, List<(string, string)> failed, int scenes, HashSet<string> res,
        double seconds) =>
        new()
        {
            Rows = rows, ChosenTimesteps = hist, Failed = failed, Scenes = scenes,
            Resolution = res.Count == 0 ? "-" : res.Count == 1 ? res.First() : "mixed",
            Seconds = seconds,
        };

    static void CheckRules(EdgeBenchmarkOptions o)
    {
        if (o.Rules.Length == 0) throw new ArgumentException("no ternary rule to score");
        if (o.Rules.Distinct().Count() != o.Rules.Length) throw new ArgumentException($"ternary rules {string.Join(",", o.Rules.Select(r => r.Name))} contain a duplicate");
    }

    // Scores of every map (index r) under every ternary rule (index k) of the options.
    static EdgeScores[][] ScoreAll(float[][] maps, int th, int tw, int[] ids, int gh, int gw, IReadOnlyList<(int A, int B)> hard, EdgeBenchmarkOptions o,
        IReadOnlyList<int>? things) =>
        maps.Select(m => o.Rules.Select(rule => EdgeQuality.Score(m, th, tw, ids, gh, gw, hard, o.Quality with { Ternary = rule }, things)).ToArray()).ToArray();

    // One row per method and rule (method-major); the rule is named in the label only when several rules are scored.
    static List<EdgeBenchmarkRow> Rows(List<(string Method, EdgeMetric? Metric, int? Fixed, bool Peak)> methods, List<EdgeScores>[][] scores, EdgeBenchmarkOptions o)
    {
        var rows = new List<EdgeBenchmarkRow>();
        for (int r = 0; r < methods.Count; r++)
            for (int k = 0; k < o.Rules.Length; k++)
            {
                var (method, metric, fixedT, peak) = methods[r];
                string label = o.Rules.Length > 1 ? $"{method}, ternary {o.Rules[k].Name}" : method;
                rows.Add(new EdgeBenchmarkRow(label, metric, fixedT, peak, EdgeQuality.Aggregate(scores[r][k])) { Ternary = o.Rules[k] });
            }
        return rows;
    }

    /// <summary>Lower-case metric name as used on the command line (kl, jsd, l2, cos).</summary>
    public static string MetricName(EdgeMetric m) => m switch
    {
        EdgeMetric.KL => "kl",
        EdgeMetric.JSD => "jsd",
        EdgeMetric.L2 => "l2",
        EdgeMetric.Cosine => "cos",
        _ => m.ToString(),
    };

    // EdgeKL (Eq 6) of an accumulated map [h·w, h·w] as a row-major float array [h, w].
    static float[] EdgeMap(IAttentionRows map, EdgeMetric metric)
    {
        using var scope = torch.NewDisposeScope();
        return EdgeKL.Compute(map, metric).to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
    }

    /// <summary>
    /// A binary edge map (the written one-pixel skeleton) on a th × tw grid: a cell is edge (1) when any pixel of the image area it
    /// covers is, so downsampling keeps a one-pixel line one cell wide and upsampling repeats it (nearest).
    /// </summary>
    internal static float[] CoverTo(bool[] edge, int h, int w, int th, int tw)
    {
        var r = new float[th * tw];
        for (int y = 0; y < th; y++)
        {
            int y0 = (int)((long)y * h / th), y1 = Math.Max(y0 + 1, (int)((long)(y + 1) * h / th));
            for (int x = 0; x < tw; x++)
            {
                int x0 = (int)((long)x * w / tw), x1 = Math.Max(x0 + 1, (int)((long)(x + 1) * w / tw));
                bool any = false;
                for (int yy = y0; yy < y1 && !any; yy++) for (int xx = x0; xx < x1 && !any; xx++) any = edge[yy * w + xx];
                r[y * tw + x] = any ? 1f : 0f;
            }
        }
        return r;
    }

    static float[] ResampleTo(float[] map, int h, int w, int th, int tw) =>
        h == th && w == tw ? map : EdgeQuality.ResampleBilinear(map, h, w, th, tw);

    /// <summary>Writes the report as JSON (rows with all P/R/F1/AUC values, null where undefined; histogram; failed scenes) atomically.</summary>
    public static void WriteJson(string path, EdgeBenchmarkReport report, IReadOnlyDictionary<string, string> settings)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("settings");
            foreach (var (k, v) in settings) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteNumber("scenes", report.Scenes);
            w.WriteNumber("seconds", Math.Round(report.Seconds, 3));
            w.WriteString("resolution", report.Resolution);
            w.WriteStartArray("rows");
            foreach (var r in report.Rows)
            {
                var s = r.Summary;
                w.WriteStartObject();
                w.WriteString("method", r.Method);
                if (r.Metric is { } m) w.WriteString("metric", MetricName(m)); else w.WriteNull("metric");
                if (r.FixedTimestep is { } t) w.WriteNumber("timestep", t); else w.WriteNull("timestep");
                w.WriteBoolean("peakkl", r.PeakKL);
                w.WriteString("ternary", r.Ternary.Name);
                w.WriteNumber("images", s.Images);
                Num(w, "all_precision", s.Precision); Num(w, "all_recall", s.Recall); Num(w, "all_f1", s.F1); Num(w, "all_auc", s.Auc);
                w.WriteNumber("hard_images", s.HardImages);
                Num(w, "hard_precision", s.HardPrecision); Num(w, "hard_recall", s.HardRecall); Num(w, "hard_f1", s.HardF1); Num(w, "hard_auc", s.HardAuc);
                Num(w, "interior_precision", s.InteriorPrecision); Num(w, "interior_recall", s.InteriorRecall); Num(w, "boundary_as_interior", s.BoundaryAsInterior);
                Num(w, "largest_run", s.LargestRun); w.WriteNumber("objects", s.Objects);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("peakkl_chosen_timesteps");
            foreach (var (t, n) in report.ChosenTimesteps) w.WriteNumber(t.ToString(CultureInfo.InvariantCulture), n);
            w.WriteEndObject();
            w.WriteStartArray("failed");
            foreach (var (name, err) in report.Failed) { w.WriteStartObject(); w.WriteString("scene", name); w.WriteString("error", err); w.WriteEndObject(); }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    static void Num(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, Math.Round(v, 6)); else w.WriteNull(name);
    }
}
