using System.Globalization;
using DiffEgg.Demo;
using DiffEgg.Evaluation;
using DiffEgg.Formats;
using DiffEgg.Refinement;

namespace DiffEgg.Bench;

/// <summary>
/// Refinement ablation on a <c>diffegg demo</c> output folder: re-runs Alg 4 on the demo's simulated coarse masks with several
/// <see cref="RefineOptions"/> variants and edge inputs and prints COCO mask AP/AR for each (no edges are recomputed).
/// <c>dotnet bench/DiffEgg.Bench/bin/Release/net10.0/DiffEgg.Bench.dll refine-ablation DEMO_DIR [ternary|soft|sobel ...] [--grid] [--uncertain V,V,...]</c>
/// (<c>--grid</c> adds β × min-keep × propagation-threshold combinations; <c>--uncertain</c> runs the ternary input once per edge value of
/// its uncertain pixels, as <c>diffegg refine --uncertain</c>, default 0.5).
/// </summary>
public static class RefineAblation
{
    public static int Run(string[] args)
    {
        string dir = args[1];
        bool grid = args.Contains("--grid");
        var rest = args.Skip(2).Where(a => a != "--grid").ToList();
        var uncertain = new[] { new DemoOptions { OutDir = dir }.Uncertain };
        int ui = rest.IndexOf("--uncertain");
        if (ui >= 0)
        {
            if (ui + 1 >= rest.Count) throw new ArgumentException("--uncertain needs a comma-separated list of values in [0, 1]");
            uncertain = rest[ui + 1].Split(',').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            rest.RemoveRange(ui, 2);
        }
        var inputs = rest.Count > 0 ? rest.ToArray() : new[] { "ternary", "soft", "sobel" };
        var gt = CocoFiles.ReadInstances(Path.Combine(dir, "data", "instances.json"));
        var coarse = CocoFiles.ReadResults(Path.Combine(dir, "simulated_coarse_instances.json"), gt);
        var baseline = CocoEvaluator.Evaluate(gt, coarse, CocoIouType.Segm);
        Console.WriteLine($"{gt.Images.Count} images, {gt.Annotations.Count} GT instances, {coarse.Count} coarse masks");
        Console.WriteLine($"{"variant",-44} {"AP",6} {"AP50",6} {"AP75",6} {"AR100",6} masks");
        Print("coarse (no refinement)", baseline, coarse.Count);
        var d = new RefineOptions();
        var variants = new List<(string, RefineOptions)>
        {
            ("default", d),
            ("per mask (no competition)", d with { Competition = false }),
            ("previous default (per mask, no arbiter)", d with { Competition = false, Arbiter = false, MinEdgeLength = 0 }),
            ("no arbiter", d with { Arbiter = false }),
            ("no re-scoring", d with { RescoreWeight = 0 }),
            ("paper CCL cores (gap tolerance 0)", d with { GapTolerance = 0 }),
            ("no split", d with { SplitCoverage = 1f, SplitMinFraction = 0.99f }),
            ("Alg 4 literally (no guards, no clean-up)", d with { Competition = false, Arbiter = false, MinEdgeLength = 0, SplitMinFraction = 0, MinKeep = 0, CloseRadius = 0, FillHoles = false }),
            ("split min fraction 0", d with { SplitMinFraction = 0 }),
            ("min-keep 0 (no collapse guard)", d with { MinKeep = 0 }),
            ("min-keep 0.5", d with { MinKeep = 0.5 }),
            ("no closing, no hole filling", d with { CloseRadius = 0, FillHoles = false }),
        };
        if (grid)
            foreach (double beta in new[] { 1.0, 2, 3, 5, 10 })
                foreach (double keep in new[] { 0.5, 0.8 })
                    foreach (float pt in new[] { 0.3f, 0.5f })
                        variants.Add(($"beta {beta} keep {keep} prop {pt}", d with { Beta = beta, MinKeep = keep, PropagationThreshold = pt }));
        var byImage = gt.Images.ToDictionary(im => im.Id, im => coarse.Where(r => r.ImageId == im.Id).ToList());
        foreach (var (input, u) in inputs.SelectMany(i => i == "ternary" ? uncertain.Select(u => (i, u)) : new[] { (i, 0.5f) }))
        {
            var demo = new DemoOptions
            {
                OutDir = dir,
                Uncertain = u,
                EdgeInput = input switch { "soft" => DemoEdgeInput.Soft, "sobel" => DemoEdgeInput.Sobel, "ternary" or "oracle" => DemoEdgeInput.Ternary, _ => throw new ArgumentException(input) },
            };
            string label = input == "ternary" && uncertain.Length > 1 ? string.Create(CultureInfo.InvariantCulture, $"ternary u={u:0.##}") : input;
            // "oracle": the demo's ground-truth boundary maps (oracle_edges/<stem>.png) instead of the model's edges
            var edges = gt.Images.ToDictionary(im => im.Id, im => input == "oracle"
                ? EdgeMapReader.Read(Path.Combine(dir, "oracle_edges", Path.GetFileNameWithoutExtension(im.FileName) + ".png"))
                : DemoRunner.ModelEdges(Path.Combine(dir, "edges"), Path.GetFileNameWithoutExtension(im.FileName), demo));
            foreach (var (name, opt) in variants)
            {
                var results = new List<CocoResult>();
                foreach (var im in gt.Images) results.AddRange(CocoRefinement.RefineImage(im, byImage[im.Id], edges[im.Id], opt));
                Print($"{label}: {name}", CocoEvaluator.Evaluate(gt, results, CocoIouType.Segm), results.Count);
            }
        }
        return 0;
    }

    static void Print(string name, CocoEvalResult r, int n)
    {
        var s = r.StatsByName();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-44} {s["AP"],6:F3} {s["AP50"],6:F3} {s["AP75"],6:F3} {s["AR100"],6:F3} {n}"));
    }
}
