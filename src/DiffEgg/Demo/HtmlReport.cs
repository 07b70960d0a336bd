using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Evaluation;

namespace DiffEgg.Demo;

/// <summary>Writes the demo's metrics.json and its offline, self-contained HTML report (relative PNGs, inline SVG and CSS, no scripts).</summary>
public static class HtmlReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    static readonly string[] ApShown = { "AP", "AP50", "AP75", "APs", "AR1", "AR10", "AR100", "ARs" };

    static string H(string s) => WebUtility.HtmlEncode(s);
    static string F(double v, int d) => v.ToString("F" + d, Inv);
    static string Ap(double v) => v < 0 ? "n/a" : F(v, 3);
    static string Pq(double v) => double.IsFinite(v) ? F(100 * v, 1) : "n/a";

    /// <summary>metrics.json: options, simulation rates and counts, AP/AR (COCO, −1 = undefined) before/after refinement, PQ/SQ/RQ (fractions in [0,1]) naive vs pseudo-labels, stage times.</summary>
    public static void WriteMetrics(string path, DemoResult r)
    {
        var o = r.Options;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            void Num(string name, double v) { if (double.IsFinite(v)) w.WriteNumber(name, v); else w.WriteNull(name); }
            w.WriteStartObject();
            w.WriteString("model", r.ModelPath);
            w.WriteBoolean("embedded_model", r.EmbeddedModel);
            w.WriteNumber("count", o.Count);
            w.WriteNumber("seed", o.Seed);
            w.WriteNumber("size", o.Size);
            w.WriteStartArray("timesteps"); foreach (var t in o.Timesteps) w.WriteNumberValue(t); w.WriteEndArray();
            w.WriteStartObject("simulation");
            w.WriteStartObject("coarse_instances");
            w.WriteNumber("merge_rate", o.Coarse.MergeRate);
            w.WriteNumber("fragment_rate", o.Coarse.FragmentRate);
            w.WriteNumber("boundary_noise", o.Coarse.BoundaryNoise);
            w.WriteNumber("min_contact", o.Coarse.MinContact);
            w.WriteNumber("gt_instances", r.Scenes.Sum(s => s.GtInstances));
            w.WriteNumber("touching_pairs", r.Scenes.Sum(s => s.TouchingPairs));
            w.WriteNumber("merged_pairs", r.Scenes.Sum(s => s.Merges));
            w.WriteNumber("fragmented_instances", r.Scenes.Sum(s => s.Fragmented));
            w.WriteNumber("coarse_masks", r.Scenes.Sum(s => s.CoarseMasks));
            w.WriteNumber("refined_masks", r.Scenes.Sum(s => s.RefinedMasks));
            w.WriteEndObject();
            w.WriteNumber("uncertain_edge_value", o.Uncertain);
            w.WriteString("ternary_rule", o.Ternary.Name);
            w.WriteString("edge_input", o.EdgeInput.ToString().ToLowerInvariant());
            if (o.AdapterPath is not null) w.WriteString("adapter", o.AdapterPath);
            w.WriteStartObject("weak_semantic");
            w.WriteNumber("boundary_noise", o.Semantic.BoundaryNoise);
            w.WriteNumber("passes", o.Semantic.Passes);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("instances");
            foreach (var (name, e) in InstanceRows(r, json: true))
            {
                w.WriteStartObject(name);
                var st = e.StatsByName();
                foreach (var k in CocoEvalResult.StatNames) Num(k, st[k]);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteStartObject("panoptic");
            foreach (var (name, e) in PanopticRows(r, json: true))
            {
                w.WriteStartObject(name);
                foreach (var (g, v) in new[] { ("all", e.All), ("things", e.Things), ("stuff", e.Stuff) })
                {
                    w.WriteStartObject(g);
                    Num("pq", v.Pq); Num("sq", v.Sq); Num("rq", v.Rq); w.WriteNumber("n", v.N);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteStartArray("scenes");
            foreach (var s in r.Scenes)
            {
                w.WriteStartObject();
                w.WriteString("file_name", s.Stem + ".png");
                w.WriteNumber("image_id", s.ImageId);
                w.WriteNumber("chosen_timestep", s.ChosenTimestep);
                w.WriteStartArray("kl_curve"); foreach (var k in s.KlCurve) { if (double.IsFinite(k)) w.WriteNumberValue(k); else w.WriteNullValue(); } w.WriteEndArray();
                w.WriteNumber("gt_instances", s.GtInstances);
                w.WriteNumber("merged_pairs", s.Merges);
                w.WriteNumber("fragmented_instances", s.Fragmented);
                w.WriteNumber("coarse_masks", s.CoarseMasks);
                w.WriteNumber("refined_masks", s.RefinedMasks);
                w.WriteNumber("naive_thing_segments", s.NaiveThingSegments);
                w.WriteNumber("pseudo_thing_segments", s.PseudoThingSegments);
                if (o.Oracle) { w.WriteNumber("oracle_refined_masks", s.OracleRefinedMasks); w.WriteNumber("oracle_pseudo_thing_segments", s.OraclePseudoThingSegments); }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("seconds");
            foreach (var (k, v) in r.StageSeconds) w.WriteNumber(k.ToString().ToLowerInvariant(), Math.Round(v, 3));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    /// <summary>The KL-by-timestep curve of PeakKL (Alg 1) as an inline SVG, the chosen timestep marked.</summary>
    public static string KlSvg(int[] timesteps, double[] curve, int chosen, int width = 240, int height = 130)
    {
        const int left = 46, right = 10, top = 12, bottom = 30;
        var pts = new List<(int I, double V)>();
        for (int i = 0; i < curve.Length; i++) if (double.IsFinite(curve[i])) pts.Add((i, curve[i]));
        var sb = new StringBuilder();
        sb.Append(Inv, $"<svg class=\"kl\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"KL by timestep\">");
        sb.Append(Inv, $"<rect x=\"{left}\" y=\"{top}\" width=\"{width - left - right}\" height=\"{height - top - bottom}\" fill=\"#fafafa\" stroke=\"#bbb\"/>");
        int n = timesteps.Length;
        double X(int i) => left + (n == 1 ? 0.5 : (double)i / (n - 1)) * (width - left - right);
        // y range: the points' range with 10% margin (KL differences between timesteps are small relative to KL itself)
        double max = pts.Count > 0 ? pts.Max(p => p.V) : 1, min = pts.Count > 0 ? pts.Min(p => p.V) : 0;
        double pad = max > min ? 0.1 * (max - min) : Math.Max(Math.Abs(max) * 0.1, 1e-12);
        max += pad; min -= pad;
        double Y(double v) => top + (1 - (v - min) / (max - min)) * (height - top - bottom);
        for (int i = 0; i < n; i++)
            sb.Append(Inv, $"<text x=\"{X(i):F1}\" y=\"{height - bottom + 13}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#444\">{timesteps[i]}</text>");
        sb.Append(Inv, $"<text x=\"{(left + width - right) / 2.0:F1}\" y=\"{height - 3}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#444\">timestep t</text>");
        sb.Append(Inv, $"<text x=\"{left - 4}\" y=\"{top + 9}\" font-size=\"9\" text-anchor=\"end\" fill=\"#444\">{max:0.0e0}</text>");
        sb.Append(Inv, $"<text x=\"{left - 4}\" y=\"{height - bottom}\" font-size=\"9\" text-anchor=\"end\" fill=\"#444\">{min:0.0e0}</text>");
        sb.Append(Inv, $"<text x=\"4\" y=\"{(top + height - bottom) / 2.0:F1}\" font-size=\"10\" fill=\"#444\" transform=\"rotate(-90 10 {(top + height - bottom) / 2.0:F1})\">KL</text>");
        if (pts.Count > 0)
        {
            sb.Append("<polyline fill=\"none\" stroke=\"#2a6fdb\" stroke-width=\"2\" points=\"");
            sb.AppendJoin(' ', pts.Select(p => string.Format(Inv, "{0:F1},{1:F1}", X(p.I), Y(p.V))));
            sb.Append("\"/>");
            foreach (var p in pts)
            {
                bool c = timesteps[p.I] == chosen;
                sb.Append(Inv, $"<circle cx=\"{X(p.I):F1}\" cy=\"{Y(p.V):F1}\" r=\"{(c ? 5 : 2.5)}\" fill=\"{(c ? "#d7263d" : "#2a6fdb")}\"><title>t={timesteps[p.I]}: KL={p.V:G4}</title></circle>");
            }
        }
        sb.Append("</svg>");
        return sb.ToString();
    }

    static readonly (string Key, string Caption)[][] Panels =
    {
        new[] { ("image", "image"), ("edgekl", "EdgeKL heat map (Eq 6)"), ("ternary", "ternary edges (Alg 2)"), ("onestep", "one-step edge probability (adapter)"), ("onestep_ternary", "one-step edges (p ≥ threshold)") },
        new[] { ("gt_instances", "GT instances"), ("coarse", "simulated coarse masks"), ("refined", "refined, model edges"), ("onestep_refined", "refined, one-step edges (adapter)"), ("oracle_refined", "refined, GT-boundary edges (oracle)") },
        new[] { ("semantic", "simulated weak semantic"), ("gt_panoptic", "GT panoptic"), ("naive_panoptic", "naive: connected regions"), ("pseudo_panoptic", "pseudo-labels, model edges"), ("oracle_pseudo_panoptic", "pseudo-labels, GT-boundary edges (oracle)") },
    };

    static List<(string Name, CocoEvalResult E)> InstanceRows(DemoResult r, bool json)
    {
        var l = new List<(string, CocoEvalResult)> { (json ? "simulated_coarse" : "simulated coarse masks", r.Coarse), (json ? "refined" : "refined with model edges", r.Refined) };
        if (r.OneStepRefined is { } a) l.Add((json ? "refined_one_step_edges" : "refined with one-step edges (adapter)", a));
        if (r.OracleRefined is { } o) l.Add((json ? "refined_oracle_gt_edges" : "refined with GT-boundary edges (oracle)", o));
        return l;
    }

    static List<(string Name, PanopticEvalResult E)> PanopticRows(DemoResult r, bool json)
    {
        var l = new List<(string, PanopticEvalResult)> { (json ? "naive_connected_regions" : "naive: one segment per connected class region", r.Naive), (json ? "edge_pseudo_labels" : "pseudo-labels with model edges (Alg 4)", r.Pseudo) };
        if (r.OraclePseudo is { } o) l.Add((json ? "edge_pseudo_labels_oracle_gt_edges" : "pseudo-labels with GT-boundary edges (oracle)", o));
        return l;
    }

    /// <summary>index.html: header (what was simulated, which model), metric tables, and per scene the images, KL curve and overlays.</summary>
    public static void Write(string path, DemoResult r)
    {
        var o = r.Options;
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>DiffEgg demo report</title>\n<style>\n");
        sb.Append("""
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#222;max-width:1340px}
h1{font-size:22px;margin:0 0 6px} h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px} h3{font-size:14px;margin:0 0 6px}
p,li{font-size:13px;line-height:1.45} code{background:#f2f2f2;padding:0 3px;border-radius:3px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right} th:first-child,td:first-child{text-align:left}
thead th{background:#f0f0f0} tr.better td.v{font-weight:600}
.scene{border:1px solid #ddd;border-radius:6px;padding:10px 12px;margin:12px 0;background:#fff}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
figure{margin:0;text-align:center} figcaption{font-size:11px;color:#555;margin-top:2px;max-width:128px}
img.px{width:128px;height:128px;image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #999;display:block}
.sim{color:#a0522d;font-weight:600} .meta{font-size:12px;color:#555;margin:4px 0 8px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 3px 0 10px;vertical-align:middle;border:1px solid #888}
""");
        sb.Append("</style></head><body>\n");
        sb.Append("<h1>DiffEgg demo: DiffEGG edges, refinement and panoptic pseudo-labels</h1>\n");
        sb.Append(Inv, $"<p>{o.Count} synthetic test-split scenes ({o.Size}×{o.Size}, seed {o.Seed}) with exact ground truth. Edges: model <code>{H(r.ModelPath)}</code>{(r.ModelFacts.Length > 0 ? $" ({H(r.ModelFacts)}{(r.EmbeddedModel ? "; the embedded model shipped with DiffEgg, see its MODEL_CARD.md" : "")})" : "")}, ");
        sb.Append(Inv, $"{(o.Timesteps.Length > 1 ? $"PeakKL (Alg 1) over timesteps {string.Join(", ", o.Timesteps)}" : $"one UNet pass at timestep {o.Timesteps[0]}")}, EdgeKL (Eq 6), ternary edges (Alg 2, rule {o.Ternary.Name}){(o.AdapterPath is null ? "" : $"; beside them the one-step edges (Alg 3: one UNet pass at τ = 0 + edge generator) of the adapter <code>{H(Path.GetFileName(Path.TrimEndingDirectorySeparator(o.AdapterPath)))}</code>")}.</p>\n");
        sb.Append("<p><span class=\"sim\">Simulated inputs.</span> The method refines rough masks from other models; here those inputs are <b>simulated</b> from the ground truth, not predicted:</p><ul>\n");
        sb.Append(Inv, $"<li><span class=\"sim\">simulated coarse instance masks</span>: each pair of touching instances (≥ {o.Coarse.MinContact} pixel contacts) is merged into one mask with probability {o.Coarse.MergeRate:0.##}; each other instance is cut along a random line into two masks with probability {o.Coarse.FragmentRate:0.##}; every boundary pixel is flipped with probability {o.Coarse.BoundaryNoise:0.##}; random scores in [0.5, 1]. ");
        sb.Append(Inv, $"Here: {r.Scenes.Sum(s => s.GtInstances)} GT instances, {r.Scenes.Sum(s => s.TouchingPairs)} touching pairs, {r.Scenes.Sum(s => s.Merges)} merged, {r.Scenes.Sum(s => s.Fragmented)} fragmented → {r.Scenes.Sum(s => s.CoarseMasks)} coarse masks; refinement (Alg 4) returned {r.Scenes.Sum(s => s.RefinedMasks)} masks.</li>\n");
        sb.Append(Inv, $"<li><span class=\"sim\">simulated weak semantic masks</span>: the GT class map without instance information; in {o.Semantic.Passes} pass(es), each class-boundary pixel takes a neighbouring class with probability {o.Semantic.BoundaryNoise:0.##}.</li></ul>\n");
        sb.Append(o.EdgeInput switch
        {
            DemoEdgeInput.Ternary => string.Create(Inv, $"<p>Refinement (Alg 4) reads the model's ternary edge map (edge = 1, uncertain = {o.Uncertain:0.##}, interior = 0), as <code>diffegg refine --edge-scale ternary</code> reads <code>edges/&lt;stem&gt;.ternary.png</code>."),
            DemoEdgeInput.Soft => "<p>Refinement (Alg 4) reads the model's EdgeKL map scaled by the thresholds of its ternary rule (soft ternary: Alg 2's edges 1, its interior 0, uncertain pixels in between), as <code>diffegg refine</code> reads <code>edges/&lt;stem&gt;.edges.safetensors</code>.",
            _ => "<p><b>Baseline run without the model's edges:</b> refinement (Alg 4) reads a Sobel edge map of the image (per-channel maximum, blur σ 1.5, soft-scaled by the ternary rule's thresholds); the rows labelled \"model edges\" hold this baseline.",
        });
        if (o.Oracle) sb.Append(" The <b>oracle</b> rows run the same refinement with the ground-truth boundaries as edges (<code>oracle_edges/</code>): an upper bound that separates the quality of the model's edges from what the refinement can do.");
        sb.Append("</p>\n");

        sb.Append("<h2>Instance masks: COCO mask AP/AR (simulated coarse → refined)</h2>\n<table><thead><tr><th>masks</th>");
        foreach (var k in ApShown) sb.Append("<th>").Append(k).Append("</th>");
        sb.Append("</tr></thead><tbody>\n");
        foreach (var (name, e) in InstanceRows(r, json: false))
        {
            var st = e.StatsByName();
            sb.Append("<tr><td>").Append(name).Append("</td>");
            foreach (var k in ApShown) sb.Append("<td class=\"v\">").Append(Ap(st[k])).Append("</td>");
            sb.Append("</tr>\n");
        }
        sb.Append("</tbody></table><p class=\"meta\">pycocotools-exact evaluation (<code>CocoEvaluator</code>, segm). At 64×64 every instance is COCO-“small”, so APm/APl/ARm/ARl are undefined (−1) and left out.</p>\n");

        sb.Append("<h2>Panoptic pseudo-labels from the simulated weak semantic masks: PQ / SQ / RQ (%)</h2>\n<table><thead><tr><th>segments</th><th>PQ</th><th>SQ</th><th>RQ</th><th>PQ things</th><th>SQ things</th><th>RQ things</th><th>PQ stuff</th></tr></thead><tbody>\n");
        foreach (var (name, e) in PanopticRows(r, json: false))
            sb.Append($"<tr><td>{name}</td><td class=\"v\">{Pq(e.All.Pq)}</td><td>{Pq(e.All.Sq)}</td><td>{Pq(e.All.Rq)}</td><td class=\"v\">{Pq(e.Things.Pq)}</td><td>{Pq(e.Things.Sq)}</td><td>{Pq(e.Things.Rq)}</td><td>{Pq(e.Stuff.Pq)}</td></tr>\n");
        sb.Append("</tbody></table><p class=\"meta\">panopticapi-exact evaluation (<code>PanopticEvaluator</code>). Stuff is one segment per class in every row, so only things differ.</p>\n");
        sb.Append("<p class=\"meta\">Time per stage (s): ").Append(string.Join(", ", r.StageSeconds.Select(kv => $"{kv.Key.ToString().ToLowerInvariant()} {F(kv.Value, 1)}"))).Append(Inv, $"; total {F(r.StageSeconds.Values.Sum(), 1)}.</p>\n");
        sb.Append("<p class=\"meta legend\">Ternary map:<span style=\"background:#fff\"></span>edge<span style=\"background:#e68c28\"></span>uncertain<span style=\"background:#14183c\"></span>interior. Overlays: one colour per mask, boundary in full colour. Panoptic: one colour per thing segment, stuff muted, segment borders dark.</p>\n");

        sb.Append("<h2>Scenes</h2>\n");
        foreach (var s in r.Scenes)
        {
            sb.Append("<div class=\"scene\">");
            sb.Append(Inv, $"<h3>{H(s.Stem)} (image id {s.ImageId})</h3><div class=\"meta\">{(s.Timesteps.Length > 1 ? $"PeakKL chose t = {s.ChosenTimestep}" : $"One UNet pass at t = {s.ChosenTimestep} (no PeakKL scan)")}. {s.GtInstances} GT instances; <span class=\"sim\">simulated</span>: {s.Merges} merged pair(s), {s.Fragmented} fragmented → {s.CoarseMasks} coarse masks; refined: {s.RefinedMasks} masks{(o.Oracle ? $" ({s.OracleRefinedMasks} with oracle edges)" : "")}. Thing segments: naive {s.NaiveThingSegments}, pseudo-labels {s.PseudoThingSegments}{(o.Oracle ? $" ({s.OraclePseudoThingSegments} with oracle edges)" : "")}.</div>");
            for (int row = 0; row < Panels.Length; row++)
            {
                sb.Append(row == 0 ? "<div class=\"row\">" : "<div class=\"row\" style=\"margin-top:8px\">");
                foreach (var (key, cap) in Panels[row])
                    if (s.Images.TryGetValue(key, out var rel)) sb.Append($"<figure><img class=\"px\" src=\"{H(rel)}\" alt=\"{H(cap)}\"><figcaption>{H(cap)}</figcaption></figure>");
                if (row == 0 && s.Timesteps.Length > 1) // a KL curve needs at least two timesteps
                    sb.Append("<figure>").Append(KlSvg(s.Timesteps, s.KlCurve, s.ChosenTimestep)).Append("<figcaption style=\"max-width:240px\">KL between consecutive attention maps (PeakKL, Alg 1); red = chosen timestep</figcaption></figure>");
                sb.Append("</div>");
            }
            sb.Append("</div>\n");
        }
        sb.Append("<p class=\"meta\">Files: <code>data/</code> (scenes and GT), <code>edges/</code> (as <code>diffegg edges</code>), <code>simulated_coarse_instances.json</code>, <code>refined_instances.json</code>, <code>simulated_semantic/</code>, <code>naive_panoptic/</code>, <code>pseudo_panoptic/</code>, <code>oracle_edges/</code>, <code>oracle_refined_instances.json</code>, <code>oracle_pseudo_panoptic/</code>, <code>edges-onestep/</code> and <code>onestep_refined_instances.json</code> (with <code>--adapter</code>), <code>metrics.json</code>, <code>report/</code> (the PNGs of this page).</p>\n");
        sb.Append("</body></html>\n");
        AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(sb.ToString()));
    }
}
