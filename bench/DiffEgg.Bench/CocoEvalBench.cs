using System.Diagnostics;
using DiffEgg.Evaluation;
using DiffEgg.Formats;

/// <summary>
/// `coco-eval` bench mode: generates a deterministic COCO instances set (N images of S×S, 10 gt masks and 100 scored
/// detections per image, 4 categories, compressed RLE), writes gt.json / dt.json, and times CocoEvaluator (segm and bbox).
/// Usage: DiffEgg.Bench coco-eval [--out DIR] [--images N] [--size S] [--generate-only]
/// </summary>
public static class CocoEvalBench
{
    public static int Run(string[] args)
    {
        string outDir = "bench-coco";
        int images = 2000, size = 128;
        bool generateOnly = false;
        string? dump = null;
        bool mixed = false;
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--out": outDir = args[++i]; break;
                case "--images": images = int.Parse(args[++i]); break;
                case "--size": size = int.Parse(args[++i]); break;
                case "--generate-only": generateOnly = true; break;
                case "--dump": dump = args[++i]; break;
                case "--mixed": mixed = true; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        Directory.CreateDirectory(outDir);
        var sw = Stopwatch.StartNew();
        var (gt, dt) = Generate(images, size, seed: 2024);
        if (mixed) (gt, dt) = Mix(gt, dt, seed: 7);
        string gtPath = Path.Combine(outDir, "gt.json"), dtPath = Path.Combine(outDir, "dt.json");
        CocoFiles.WriteInstances(gtPath, gt);
        CocoFiles.WriteResults(dtPath, dt);
        Console.WriteLine($"generated {images} images {size}x{size}: {gt.Annotations.Count} gt, {dt.Count} detections in {sw.Elapsed.TotalSeconds:F2}s -> {gtPath}, {dtPath}");
        if (generateOnly) return 0;
        for (int rep = 0; rep < 2; rep++)
        {
            var c0 = Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            var g2 = CocoFiles.ReadInstances(gtPath);
            var d2 = CocoFiles.ReadResults(dtPath, g2);
            Console.WriteLine($"read gt.json + dt.json: wall {sw.Elapsed.TotalSeconds:F3}s, cpu {(Process.GetCurrentProcess().TotalProcessorTime - c0).TotalSeconds:F3}s ({d2.Count} results)");
        }
        if (dump != null)
        {
            // per-image results + accumulated arrays + stats, for tools/coco_crosscheck.py (numpy accumulate/summarize)
            foreach (var type in new[] { CocoIouType.Segm, CocoIouType.Bbox })
            {
                var r = CocoEvaluator.Evaluate(gt, dt, type, keepPerImage: true);
                Dump(Path.Combine(dump, type.ToString().ToLowerInvariant() + ".json"), r);
                Console.WriteLine($"{type}: dumped to {dump}");
            }
            return 0;
        }
        foreach (var type in new[] { CocoIouType.Segm, CocoIouType.Bbox })
        {
            // warm-up on a slice, then timed full runs
            CocoEvaluator.Evaluate(gt, dt.Take(1000).ToList(), type);
            for (int rep = 0; rep < 3; rep++)
            {
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                sw.Restart();
                var r = CocoEvaluator.Evaluate(gt, dt, type);
                double wall = sw.Elapsed.TotalSeconds, cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
                Console.WriteLine($"{type}: evaluate+accumulate+summarize wall {wall:F3}s, cpu {cpu:F3}s (cores {Environment.ProcessorCount}), AP {r.Stats[0]:R}");
            }
        }
        return 0;
    }

    static void Dump(string path, CocoEvalResult r)
    {
        DiffEgg.Common.AtomicFile.Write(path, s =>
        {
            using var w = new System.Text.Json.Utf8JsonWriter(s);
            w.WriteStartObject();
            w.WriteStartArray("catIds"); foreach (var c in r.CatIds) w.WriteNumberValue(c); w.WriteEndArray();
            w.WriteStartArray("iouThrs"); foreach (var v in r.Params.IouThrs) w.WriteNumberValue(v); w.WriteEndArray();
            w.WriteStartArray("recThrs"); foreach (var v in r.Params.RecThrs) w.WriteNumberValue(v); w.WriteEndArray();
            w.WriteStartArray("precision"); foreach (var v in r.Precision) w.WriteNumberValue(v); w.WriteEndArray();
            w.WriteStartArray("recall"); foreach (var v in r.Recall) w.WriteNumberValue(v); w.WriteEndArray();
            w.WriteStartArray("stats"); foreach (var v in r.Stats) w.WriteNumberValue(v); w.WriteEndArray();
            w.WriteStartArray("evalImgs");
            foreach (var e in r.PerImage!)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", e.ImageId); w.WriteNumber("category_id", e.CategoryId); w.WriteNumber("a", e.AreaIndex);
                w.WriteStartArray("dtScores"); foreach (var v in e.DtScores) w.WriteNumberValue(v); w.WriteEndArray();
                w.WriteStartArray("dtMatched"); foreach (var v in e.DtMatched) w.WriteNumberValue(v ? 1 : 0); w.WriteEndArray();
                w.WriteStartArray("dtIgnore"); foreach (var v in e.DtIgnored) w.WriteNumberValue(v ? 1 : 0); w.WriteEndArray();
                w.WriteNumber("numGt", e.NumGt); w.WriteNumber("numGtNotIgnored", e.NumGtNotIgnored);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    /// <summary>An axis-aligned ellipse built column by column directly as RLE (no H×W buffer).</summary>
    static Rle Ellipse(int h, int w, double cx, double cy, double rx, double ry)
    {
        var counts = new List<uint>();
        long pos = 0, lastEnd = 0;
        for (int x = 0; x < w; x++)
        {
            double dx = (x + 0.5 - cx) / rx;
            if (Math.Abs(dx) >= 1) continue;
            double half = ry * Math.Sqrt(1 - dx * dx);
            int y0 = Math.Clamp((int)Math.Ceiling(cy - half - 0.5), 0, h), y1 = Math.Clamp((int)Math.Floor(cy + half - 0.5) + 1, 0, h);
            if (y1 <= y0) continue;
            long start = (long)x * h + y0;
            if (start == lastEnd && counts.Count > 0) { counts[^1] += (uint)(y1 - y0); lastEnd += y1 - y0; continue; }
            counts.Add((uint)(start - lastEnd));
            counts.Add((uint)(y1 - y0));
            lastEnd = start + (y1 - y0);
            pos = lastEnd;
        }
        counts.Add((uint)((long)h * w - lastEnd));
        return new Rle(h, w, counts.ToArray());
    }

    /// <summary>
    /// Variant that exercises every format path: gt as polygons (ellipse outlines), uncompressed RLE for crowds, stored
    /// areas that disagree with the masks, images without gt, a declared category without gt, results of an undeclared
    /// category, and results carrying a (perturbed) bbox next to the mask (so loadRes's box-mode area rule applies).
    /// </summary>
    public static (CocoDataset gt, List<CocoResult> dt) Mix(CocoDataset gt, List<CocoResult> dt, int seed)
    {
        var rng = new Random(seed);
        var cats = gt.Categories.ToList();
        cats.Add(new CocoCategory(9, "declared-without-gt"));
        var anns = new List<CocoAnnotation>();
        foreach (var a in gt.Annotations)
        {
            if (a.ImageId % 10 == 0) continue; // images without any gt
            var m = a.Segmentation!.Rle!;
            CocoSegmentation seg;
            if (a.IsCrowd == 1) seg = CocoSegmentation.FromRle(m, compressed: false);
            else
            {
                var bb = m.ToBbox();
                double cx = bb[0] + bb[2] / 2, cy = bb[1] + bb[3] / 2, rx = bb[2] / 2, ry = bb[3] / 2;
                int k = 6 + rng.Next(20);
                var poly = new double[2 * k];
                for (int j = 0; j < k; j++)
                {
                    double t = 2 * Math.PI * j / k;
                    poly[2 * j] = Math.Round(cx + rx * Math.Cos(t), 2);
                    poly[2 * j + 1] = Math.Round(cy + ry * Math.Sin(t), 2);
                }
                seg = CocoSegmentation.FromPolygons(new[] { poly });
            }
            double area = rng.NextDouble() < 0.2 ? Math.Round(a.Area * (0.5 + rng.NextDouble()), 1) : a.Area;
            anns.Add(new CocoAnnotation { Id = a.Id, ImageId = a.ImageId, CategoryId = a.CategoryId, Segmentation = seg, Bbox = a.Bbox, Area = area, IsCrowd = a.IsCrowd });
        }
        var res = new List<CocoResult>();
        foreach (var d in dt)
        {
            var bb = d.Segmentation!.Rle!.ToBbox();
            var box = new[] { bb[0] + rng.Next(-2, 3), bb[1] + rng.Next(-2, 3), Math.Max(1, bb[2] + rng.Next(-3, 4)), Math.Max(1, bb[3] + rng.Next(-3, 4)) };
            long cat = rng.NextDouble() < 0.02 ? 42 : rng.NextDouble() < 0.02 ? 9 : d.CategoryId;
            res.Add(new CocoResult { ImageId = d.ImageId, CategoryId = cat, Score = d.Score, Segmentation = d.Segmentation, Bbox = box });
        }
        return (new CocoDataset { Images = gt.Images, Categories = cats, Annotations = anns }, res);
    }

    public static (CocoDataset gt, List<CocoResult> dt) Generate(int images, int size, int seed)
    {
        var rng = new Random(seed);
        var gt = new CocoDataset();
        for (int c = 1; c <= 4; c++) gt.Categories.Add(new CocoCategory(c, "cat" + c));
        var dt = new List<CocoResult>();
        long annId = 1;
        for (int i = 1; i <= images; i++)
        {
            gt.Images.Add(new CocoImage(i, size, size, $"{i:D6}.png"));
            var objs = new List<(int cat, double cx, double cy, double rx, double ry)>();
            for (int g = 0; g < 10; g++)
            {
                int cat = rng.Next(1, 5);
                double rx = 2 + rng.NextDouble() * size / 2, ry = 2 + rng.NextDouble() * size / 2;
                double cx = rng.NextDouble() * size, cy = rng.NextDouble() * size;
                objs.Add((cat, cx, cy, rx, ry));
                var m = Ellipse(size, size, cx, cy, rx, ry);
                gt.Annotations.Add(new CocoAnnotation
                {
                    Id = annId++, ImageId = i, CategoryId = cat, Segmentation = CocoSegmentation.FromRle(m), Bbox = m.ToBbox(),
                    Area = m.Area, IsCrowd = rng.NextDouble() < 0.03 ? 1 : 0,
                });
            }
            for (int d = 0; d < 100; d++)
            {
                Rle m;
                int cat;
                if (d < 40)
                {
                    // perturbed copy of a gt object (sometimes with the wrong category)
                    var o = objs[d % objs.Count];
                    double j = 0.05 + 0.4 * rng.NextDouble();
                    cat = rng.NextDouble() < 0.9 ? o.cat : rng.Next(1, 5);
                    m = Ellipse(size, size, o.cx + (rng.NextDouble() - 0.5) * j * o.rx * 2, o.cy + (rng.NextDouble() - 0.5) * j * o.ry * 2,
                        o.rx * (1 + (rng.NextDouble() - 0.5) * j), o.ry * (1 + (rng.NextDouble() - 0.5) * j));
                }
                else
                {
                    cat = rng.Next(1, 5);
                    m = Ellipse(size, size, rng.NextDouble() * size, rng.NextDouble() * size, 2 + rng.NextDouble() * size / 4, 2 + rng.NextDouble() * size / 4);
                }
                if (m.Area == 0) m = Ellipse(size, size, size / 2.0, size / 2.0, 3, 3);
                dt.Add(new CocoResult { ImageId = i, CategoryId = cat, Score = Math.Round(rng.NextDouble(), 3), Segmentation = CocoSegmentation.FromRle(m) });
            }
        }
        return (gt, dt);
    }
}
