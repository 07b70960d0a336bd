using System.Globalization;
using DiffEgg.Data.Stress;
using DiffEgg.Evaluation;
using DiffEgg.Formats;
using DiffEgg.Refinement;

namespace DiffEgg.Bench;

/// <summary>
/// Refinement stress benchmark: <see cref="StressScenes"/> (touching objects, damaged edge maps, coarse masks with merges, fragments and
/// jitter) refined by <see cref="CocoRefinement"/>; prints coarse vs refined AP, AP50, AR100 and counts of merged objects split, fragmented
/// objects joined and correct masks damaged, each row the mean over seeds (and the worst seed's ΔAP).
/// <code>
/// DiffEgg.Bench refine-stress [--seeds 0,1,2] [--count 40] [--rows all|gaps|kinds|quick] [--variant NAME ...] [--uncertain V]
///                             [--gap F --gap-size PX --clutter F --edges soft|binary|ternary --merge F --fragment F --jitter PX --similarity F --near]
/// </code>
/// With any knob option a single custom row is run instead of the row set. Variants (ablation): see <see cref="Variants"/>.
/// </summary>
public static class RefineStress
{
    /// <summary>An object counts as recovered/correct when its best-matching mask has IoU ≥ this.</summary>
    const double Good = 0.8;

    public static int Run(string[] args)
    {
        // edge value of the ternary maps' uncertain pixels (grey 128), as `diffegg refine --uncertain`
        float uncertain = EdgeMapReader.DefaultUncertain;
        var seeds = new List<ulong> { 0, 1, 2 };
        int count = 40;
        string rowSet = "all";
        var variantNames = new List<string>();
        var custom = new StressOptions();
        bool anyKnob = false, near = false;
        string? dump = null;
        bool panoptic = false;
        for (int i = 1; i < args.Length; i++)
        {
            string a = args[i];
            string V() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            double D() => double.Parse(V(), CultureInfo.InvariantCulture);
            switch (a)
            {
                case "--seeds": seeds = V().Split(',').Select(ulong.Parse).ToList(); break;
                case "--count": count = int.Parse(V()); break;
                case "--rows": rowSet = V(); break;
                case "--variant": variantNames.Add(V()); break;
                case "--gap": custom = custom with { GapFraction = D() }; anyKnob = true; break;
                case "--gap-size": custom = custom with { GapSize = int.Parse(V()) }; anyKnob = true; break;
                case "--clutter": custom = custom with { ClutterRate = D() }; anyKnob = true; break;
                case "--edges": custom = custom with { Edges = Enum.Parse<StressEdgeKind>(V(), true) }; anyKnob = true; break;
                case "--merge": custom = custom with { MergeRate = D() }; anyKnob = true; break;
                case "--fragment": custom = custom with { FragmentRate = D() }; anyKnob = true; break;
                case "--jitter": custom = custom with { Jitter = int.Parse(V()) }; anyKnob = true; break;
                case "--similarity": custom = custom with { Similarity = D() }; anyKnob = true; break;
                case "--edge-width": custom = custom with { EdgeWidth = int.Parse(V()) }; anyKnob = true; break;
                case "--near": near = true; anyKnob = true; break;
                case "--score-info": custom = custom with { ScoreInformation = D() }; anyKnob = true; break;
                case "--dump": dump = V(); break;
                case "--uncertain": uncertain = float.Parse(V(), CultureInfo.InvariantCulture); break;
                case "--panoptic": panoptic = true; break;
                default: throw new ArgumentException($"unknown option {a}");
            }
        }
        if (near) custom = custom.NearCorrect();
        custom = custom with { Count = count };
        var rows = anyKnob ? new List<(string, StressOptions)> { ("custom", custom) } : Rows(rowSet, count);
        if (variantNames.Count == 0) variantNames.Add("default");
        var variants = variantNames.Select(n => (n, Variants(n))).ToList();
        if (dump is not null) { Dump(StressScenes.Generate(rows[0].Item2 with { Seed = seeds[0] }), dump, variants[0].Item2, uncertain); return 0; }

        if (panoptic) return RunPanoptic(anyKnob ? rows : new List<(string, StressOptions)>
            {
                ("gaps 0 %, clutter 1 %, soft", new StressOptions { Count = count, GapFraction = 0 }),
                ("gaps 15 %, clutter 1 %, soft", new StressOptions { Count = count }),
                ("clean edges", new StressOptions { Count = count, GapFraction = 0, ClutterRate = 0 }),
            }, seeds, variants, uncertain);
        Console.WriteLine($"refine-stress: {count} images × seeds {string.Join(",", seeds)} per row; ternary uncertain = {uncertain.ToString(CultureInfo.InvariantCulture)}; mean over seeds (worst seed ΔAP in brackets); objects 'good' at IoU ≥ {Good}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| row | variant | AP coarse → refined (Δ, worst seed) | AP50 | AR100 | merged objects split | fragmented objects joined | correct masks damaged |"));
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var (rowName, opt) in rows)
        {
            var perSeed = seeds.Select(s => StressScenes.Generate(opt with { Seed = s })).ToList();
            foreach (var (vName, ropt) in variants)
            {
                var acc = new List<RowResult>();
                foreach (var scenes in perSeed) acc.Add(Evaluate(scenes, ropt, uncertain));
                Print(rowName, vName, acc);
            }
        }
        return 0;
    }

    /// <summary>
    /// Panoptic rows: each scene's weak semantic mask (<see cref="StressScenes.NoisySemantic"/>: one thing class on the objects, one stuff class
    /// elsewhere, boundary noise and islands) → pseudo-labels by the naive baseline (CCL per thing class) and by <see cref="PanopticBuilder"/>
    /// per variant; PQ (all, things) against the exact scene, mean over seeds.
    /// </summary>
    static int RunPanoptic(List<(string, StressOptions)> rows, List<ulong> seeds, List<(string, RefineOptions)> variants, float uncertain)
    {
        var isThing = new Dictionary<int, bool> { [1] = true, [50] = false };
        var cats = new List<CocoCategory> { new(1, "object", null, 1), new(50, "background", null, 0) };
        Console.WriteLine($"refine-stress --panoptic: seeds {string.Join(",", seeds)}; PQ / PQ things, mean over seeds (worst seed ΔPQ vs naive in brackets)");
        Console.WriteLine("| row | method | PQ | PQ things | SQ things | RQ things |");
        Console.WriteLine("|---|---|---|---|---|---|");
        string root = Directory.CreateTempSubdirectory("diffegg-pan-stress").FullName;
        try
        {
            foreach (var (rowName, opt) in rows)
            {
                var methods = new List<(string Name, Func<byte[], StressScene, PanopticResult> Build)>
                {
                    ("naive (CCL per thing class)", (sem, sc) => DiffEgg.Demo.NaivePanoptic.Build(sem, sc.Width, sc.Height, isThing)),
                };
                foreach (var (vName, ro) in variants)
                    methods.Add((vName, (sem, sc) => PanopticBuilder.Build(sem, sc.Width, sc.Height, EdgeMapReader.FromGray(sc.EdgeGray, sc.Width, sc.Height, sc.EdgeKind == StressEdgeKind.Ternary ? EdgePngFormat.Ternary : EdgePngFormat.Probability, uncertain), isThing, ro)));
                var pq = new double[methods.Count, seeds.Count];
                var pqt = new double[methods.Count, seeds.Count];
                var sqt = new double[methods.Count, seeds.Count];
                var rqt = new double[methods.Count, seeds.Count];
                for (int si = 0; si < seeds.Count; si++)
                {
                    var scenes = StressScenes.Generate(opt with { Seed = seeds[si] });
                    string gtDir = Path.Combine(root, "gt");
                    Directory.CreateDirectory(gtDir);
                    var gt = new PanopticDataset { Categories = cats };
                    var sems = new List<byte[]>();
                    for (int k = 0; k < scenes.Count; k++)
                    {
                        var sc = scenes[k];
                        var ids = sc.Labels.Select(l => l == 0 ? sc.ObjectCount + 1 : l).ToArray();
                        var segs = Enumerable.Range(1, sc.ObjectCount + 1).Select(id => new PseudoSegment(id, id <= sc.ObjectCount ? 1 : 50, ids.LongCount(v => v == id), new[] { 0, 0, 1, 1 })).ToList();
                        var r = new PanopticResult(sc.Width, sc.Height, ids, segs);
                        PanopticFiles.WritePng(Path.Combine(gtDir, $"s{k}.png"), r.SegmentIds, r.Width, r.Height);
                        gt.Images.Add(new CocoImage(k + 1, sc.Width, sc.Height, $"s{k}.png"));
                        gt.Annotations.Add(r.ToAnnotation(k + 1, $"s{k}.png"));
                        sems.Add(StressScenes.NoisySemantic(sc, seeds[si] * 1000 + (ulong)k));
                    }
                    for (int m = 0; m < methods.Count; m++)
                    {
                        string dir = Path.Combine(root, $"m{m}");
                        Directory.CreateDirectory(dir);
                        var pred = new PanopticDataset { Categories = cats };
                        for (int k = 0; k < scenes.Count; k++)
                        {
                            var r = methods[m].Build(sems[k], scenes[k]);
                            PanopticFiles.WritePng(Path.Combine(dir, $"s{k}.png"), r.SegmentIds, r.Width, r.Height);
                            pred.Images.Add(new CocoImage(k + 1, r.Width, r.Height, $"s{k}.png"));
                            pred.Annotations.Add(r.ToAnnotation(k + 1, $"s{k}.png"));
                        }
                        var e = DiffEgg.Evaluation.PanopticEvaluator.Evaluate(gt, gtDir, pred, dir);
                        pq[m, si] = e.All.Pq; pqt[m, si] = e.Things.Pq; sqt[m, si] = e.Things.Sq; rqt[m, si] = e.Things.Rq;
                    }
                }
                for (int m = 0; m < methods.Count; m++)
                {
                    double Mean(double[,] a) => Enumerable.Range(0, seeds.Count).Average(si => a[m, si]);
                    double worst = Enumerable.Range(0, seeds.Count).Min(si => pq[m, si] - pq[0, si]);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {rowName} | {methods[m].Name} | {100 * Mean(pq):F1}{(m > 0 ? $" ({100 * worst:+0.0;-0.0})" : "")} | {100 * Mean(pqt):F1} | {100 * Mean(sqt):F1} | {100 * Mean(rqt):F1} |"));
                }
            }
        }
        finally { Directory.Delete(root, true); }
        return 0;
    }

    /// <summary>The benchmark's row sets.</summary>
    public static List<(string, StressOptions)> Rows(string set, int count)
    {
        var b = new StressOptions { Count = count };
        var rows = new List<(string, StressOptions)>();
        if (set is "all" or "gaps" or "quick")
        {
            var gaps = set == "quick" ? new[] { 0.0, 0.15 } : new[] { 0.0, 0.05, 0.10, 0.15, 0.20 };
            foreach (double g in gaps) rows.Add(($"mixed, gaps {g:P0}, clutter 1 %, soft", b with { GapFraction = g }));
            foreach (double g in gaps) rows.Add(($"near-correct, gaps {g:P0}, clutter 1 %, soft", b.NearCorrect() with { GapFraction = g }));
            rows.Add(("mixed, clean edges (no gaps, no clutter), soft", b with { GapFraction = 0, ClutterRate = 0 }));
        }
        if (set is "all" or "kinds")
        {
            foreach (var k in new[] { StressEdgeKind.Binary, StressEdgeKind.Ternary })
            {
                rows.Add(($"mixed, gaps 15 %, clutter 1 %, {k.ToString().ToLowerInvariant()}", b with { Edges = k }));
                rows.Add(($"near-correct, gaps 15 %, clutter 1 %, {k.ToString().ToLowerInvariant()}", b.NearCorrect() with { Edges = k }));
            }
            rows.Add(("mixed, gaps 15 %, clutter 3 %, soft", b with { ClutterRate = 0.03 }));
            rows.Add(("mixed, gaps 15 % of 4-px blocks, soft", b with { GapSize = 4 }));
            rows.Add(("mixed, gaps 15 % of 16-px blocks, soft", b with { GapSize = 16 }));
            rows.Add(("mixed, similar objects (0.8), gaps 15 %", b with { Similarity = 0.8 }));
            rows.Add(("near-correct, similar objects (0.8), gaps 15 %", b.NearCorrect() with { Similarity = 0.8 }));
            rows.Add(("mixed, jitter 2 px, gaps 15 %", b with { Jitter = 2 }));
            rows.Add(("mixed, edges 4 px thick, gaps 15 %", b with { EdgeWidth = 2 }));
            rows.Add(("mixed, informative scores (0.8), gaps 15 %", b with { ScoreInformation = 0.8 }));
            rows.Add(("near-correct, informative scores (0.8), gaps 15 %", b.NearCorrect() with { ScoreInformation = 0.8 }));
        }
        if (rows.Count == 0) throw new ArgumentException($"--rows {set}: expected all, gaps, kinds or quick");
        return rows;
    }

    /// <summary>Refine options by variant name: "default" and ablations that switch one behaviour off.</summary>
    public static RefineOptions Variants(string name)
    {
        var d = new RefineOptions();
        return name switch
        {
            "default" => d,
            "no competition (Alg 4 per mask)" or "per-mask" => d with { Competition = false },
            "previous (per mask, no arbiter, no clean-up of clutter)" or "previous" => d with { Competition = false, Arbiter = false, MinEdgeLength = 0 },
            "no arbiter" or "no-arbiter" => d with { Arbiter = false },
            "gap 0" => d with { GapTolerance = 0 },
            "gap 1" => d with { GapTolerance = 1 },
            "gap 2" => d with { GapTolerance = 2 },
            "gap 4" => d with { GapTolerance = 4 },
            "gap 5" => d with { GapTolerance = 5 },
            "no despeckle" => d with { MinEdgeLength = 0 },
            "no walk" => d with { Steps = 0 },
            "vote 0.3" => d with { RegionVote = 0.3f },
            "vote 0.5" => d with { RegionVote = 0.5f },
            "no rescore" => d with { RescoreWeight = 0 },
            "rescore 1" => d with { RescoreWeight = 1 },
            "margin 0.05" => d with { ArbiterMargin = 0.05 },
            "min-keep 0" => d with { MinKeep = 0 },
            "steps 64" => d with { Steps = 64 },
            "steps 128" => d with { Steps = 128 },
            _ => throw new ArgumentException($"unknown variant {name}"),
        };
    }

    sealed record RowResult(double ApC, double ApR, double Ap50C, double Ap50R, double ArC, double ArR, int MergedSplit, int Merged, int FragJoined, int Frag, int Damaged, int Correct);

    static RowResult Evaluate(List<StressScene> scenes, RefineOptions options, float uncertain)
    {
        var gt = new CocoDataset { Categories = { new CocoCategory(1, "object") } };
        var coarse = new List<CocoResult>();
        var refined = new List<CocoResult>();
        int mergedSplit = 0, merged = 0, fragJoined = 0, frag = 0, damaged = 0, correct = 0;
        long annId = 1;
        for (int s = 0; s < scenes.Count; s++)
        {
            var sc = scenes[s];
            var image = new CocoImage(s + 1, sc.Width, sc.Height, $"stress{s:D3}.png");
            gt.Images.Add(image);
            var objects = new List<byte[]>();
            for (int k = 1; k <= sc.ObjectCount; k++)
            {
                var px = new byte[sc.Labels.Length];
                for (int i = 0; i < px.Length; i++) if (sc.Labels[i] == k) px[i] = 1;
                objects.Add(px);
                var rle = Rle.Encode(px, sc.Height, sc.Width);
                gt.Annotations.Add(new CocoAnnotation { Id = annId++, ImageId = image.Id, CategoryId = 1, Segmentation = CocoSegmentation.FromRle(rle), Bbox = rle.ToBbox(), Area = rle.Area });
            }
            var mine = sc.Masks.Select(m => CocoRefinement.ToResult(image.Id, new InstanceMask(sc.Width, sc.Height, m.Pixels, 1, m.Score))).ToList();
            coarse.AddRange(mine);
            var edges = EdgeMapReader.FromGray(sc.EdgeGray, sc.Width, sc.Height, sc.EdgeKind == StressEdgeKind.Ternary ? EdgePngFormat.Ternary : EdgePngFormat.Probability, uncertain);
            var outList = CocoRefinement.RefineImage(image, mine, edges, options);
            refined.AddRange(outList);
            var before = BestIoU(objects, sc.Masks.Select(m => m.Pixels));
            var after = BestIoU(objects, outList.Select(r => r.Segmentation!.ToRle(sc.Height, sc.Width).Decode()));
            foreach (var m in sc.Masks)
                foreach (int k in m.Objects)
                {
                    if (m.Kind == StressMaskKind.Merged) { merged++; if (before[k - 1] < Good && after[k - 1] >= Good) mergedSplit++; }
                }
            var fragObjects = sc.Masks.Where(m => m.Kind == StressMaskKind.Fragment).Select(m => m.Objects[0]).Distinct();
            foreach (int k in fragObjects) { frag++; if (before[k - 1] < Good && after[k - 1] >= Good) fragJoined++; }
            for (int k = 0; k < objects.Count; k++)
                if (before[k] >= Good) { correct++; if (after[k] < before[k] - 0.1) damaged++; }
        }
        var c = CocoEvaluator.Evaluate(gt, coarse, CocoIouType.Segm).StatsByName();
        var r = CocoEvaluator.Evaluate(gt, refined, CocoIouType.Segm).StatsByName();
        return new RowResult(c["AP"], r["AP"], c["AP50"], r["AP50"], c["AR100"], r["AR100"], mergedSplit, merged, fragJoined, frag, damaged, correct);
    }

    /// <summary>Writes, per scene: ground truth, edge map, coarse masks and refined masks as colour PNGs side by side (for looking at cases).</summary>
    static void Dump(List<StressScene> scenes, string dir, RefineOptions options, float uncertain)
    {
        Directory.CreateDirectory(dir);
        for (int s = 0; s < Math.Min(scenes.Count, 40); s++)
        {
            var sc = scenes[s];
            int W = sc.Width, H = sc.Height;
            var image = new CocoImage(1, W, H, "x.png");
            var mine = sc.Masks.Select(m => CocoRefinement.ToResult(1, new InstanceMask(W, H, m.Pixels, 1, m.Score))).ToList();
            var em = EdgeMapReader.FromGray(sc.EdgeGray, W, H, sc.EdgeKind == StressEdgeKind.Ternary ? EdgePngFormat.Ternary : EdgePngFormat.Probability, uncertain);
            var refined = CocoRefinement.RefineImage(image, mine, em, options)
                .Select(r => r.Segmentation!.ToRle(H, W).Decode()).ToList();
            var objs = Enumerable.Range(1, sc.ObjectCount).Select(k => sc.Labels.Select(l => l == k ? (byte)1 : (byte)0).ToArray()).ToList();
            var b0 = BestIoU(objs, sc.Masks.Select(m => m.Pixels)); var b1 = BestIoU(objs, refined);
            Console.WriteLine($"scene{s:D2}: " + string.Join(" ", Enumerable.Range(0, objs.Count).Select(k => string.Create(CultureInfo.InvariantCulture, $"{k + 1}:{b0[k]:F2}→{b1[k]:F2}{(b1[k] < b0[k] - 0.1 ? "!" : "")}"))));
            int[] part;
            using (TorchSharp.torch.NewDisposeScope())
            {
                var (hh, ww) = RefineGrid.WorkSize(W, H, em, options.MaxSide);
                var E = RefineGrid.EdgesAt(em, hh, ww);
                var clean = EdgeRegions.CleanEdges(E.contiguous().data<float>().ToArray(), ww, hh, options.EdgeThreshold, options.MinEdgeLength);
                var rp = EdgeRegions.Partition(E, clean, options.GapTolerance, options);
                Console.WriteLine($"  partition: {rp.Cores.Count} cores, {rp.Count} regions, grid {ww}x{hh}");
                part = new int[W * H];
                for (int i = 0; i < W * H; i++) { int y = i / W * hh / H, x = i % W * ww / W; part[i] = rp.Labels[y * ww + x] * (clean[y * ww + x] ? -1 : 1); }
            }
            var img = new DiffEgg.Data.RgbImage(5 * W + 16, H);
            void Put(int panel, int i, (int r, int g, int b) c) { int x = i % W + panel * (W + 4), y = i / W; int o = 3 * (y * img.Width + x); img.Pixels[o] = (byte)c.r; img.Pixels[o + 1] = (byte)c.g; img.Pixels[o + 2] = (byte)c.b; }
            (int, int, int) Col(int k) => k == 0 ? (0, 0, 0) : ((k * 97) % 200 + 55, (k * 57) % 200 + 55, (k * 151) % 200 + 55);
            for (int i = 0; i < W * H; i++)
            {
                Put(0, i, Col(sc.Labels[i]));
                Put(1, i, (sc.EdgeGray[i], sc.EdgeGray[i], sc.EdgeGray[i]));
                int c = 0, cnt = 0; for (int m = 0; m < sc.Masks.Count; m++) if (sc.Masks[m].Pixels[i] != 0) { c = m + 1; cnt++; }
                Put(2, i, cnt > 1 ? (255, 255, 255) : Col(c));
                c = 0; cnt = 0; for (int m = 0; m < refined.Count; m++) if (refined[m][i] != 0) { c = m + 1; cnt++; }
                Put(3, i, cnt > 1 ? (255, 255, 255) : Col(c));
                var pc = Col(Math.Abs(part[i]) * 7 + 3);
                Put(4, i, part[i] < 0 ? (pc.Item1 / 2, pc.Item2 / 2, pc.Item3 / 2) : pc);
            }
            DiffEgg.Data.ImageIO.WriteRgbPng(Path.Combine(dir, $"scene{s:D2}.png"), DiffEgg.Data.ImageIO.Resize(img, img.Width * 2, img.Height * 2));
        }
    }

    static double[] BestIoU(List<byte[]> objects, IEnumerable<byte[]> masks)
    {
        var best = new double[objects.Count];
        foreach (var m in masks)
            for (int k = 0; k < objects.Count; k++)
            {
                long inter = 0, uni = 0;
                var o = objects[k];
                for (int i = 0; i < o.Length; i++)
                {
                    bool a = o[i] != 0, b = m[i] != 0;
                    if (a && b) inter++;
                    if (a || b) uni++;
                }
                if (uni > 0) best[k] = Math.Max(best[k], (double)inter / uni);
            }
        return best;
    }

    static void Print(string row, string variant, List<RowResult> r)
    {
        double M(Func<RowResult, double> f) => r.Average(f);
        double worst = r.Min(x => x.ApR - x.ApC);
        string Count(Func<RowResult, int> k, Func<RowResult, int> n) => $"{r.Sum(k)}/{r.Sum(n)}";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {row} | {variant} | {M(x => x.ApC):F3} → {M(x => x.ApR):F3} ({M(x => x.ApR - x.ApC):+0.000;-0.000}, {worst:+0.000;-0.000}) | {M(x => x.Ap50C):F3} → {M(x => x.Ap50R):F3} | {M(x => x.ArC):F3} → {M(x => x.ArR):F3} | {Count(x => x.MergedSplit, x => x.Merged)} | {Count(x => x.FragJoined, x => x.Frag)} | {Count(x => x.Damaged, x => x.Correct)} |"));
    }
}
