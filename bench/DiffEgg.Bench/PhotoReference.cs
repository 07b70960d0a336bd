using System.Globalization;
using System.Text.Json;
using DiffEgg.Data;
using DiffEgg.Demo;
using DiffEgg.Evaluation;
using DiffEgg.Formats;
using DiffEgg.Refinement;

namespace DiffEgg.Bench;

/// <summary>
/// Reference masks and coarse "other tool" masks for a photo of separate round objects on a plain background (scikit-image's coins),
/// made by a classical procedure, for the walk-through of docs/own-images.md. NOT human annotation.
/// <code>
/// DiffEgg.Bench photo-reference IMAGE OUT_DIR [--blur 2] [--min-area 300] [--persistence 3] [--merge-gap 12] [--min-piece 50]
/// DiffEgg.Bench photo-pairs OUT_DIR RESULTS.json [RESULTS.json ...]
/// </code>
/// <c>photo-reference</c> writes into OUT_DIR: <c>images/&lt;name&gt;</c> (a copy of the photo), <c>image-info.json</c> (COCO images),
/// <c>reference.json</c> (COCO instances, category 1 "object"), <c>otsu.json</c> and <c>merged.json</c> (COCO results, score 1),
/// <c>pairs.json</c> (the reference ids merged in merged.json, with their gap) and <c>reference.overlay.png</c>, <c>otsu.overlay.png</c>,
/// <c>merged.overlay.png</c> (<see cref="DemoImages.Overlay"/>).
/// <list type="number">
/// <item>Reference: grey → Gaussian blur σ = <c>--blur</c> → Otsu threshold of the blurred image → holes filled (background not
/// 4-connected to the border) → 8-connected pieces under <c>--min-area</c> px dropped → objects that touch split at the maxima of the
/// distance to the background standing ≥ <c>--persistence</c> px above their saddle (<see cref="EdgeRegions.PersistentCores"/>), grown back
/// by a watershed on that distance (<see cref="EdgeRegions.Flood"/>) restricted to the foreground.</item>
/// <item>Otsu masks ("another tool", coarse): 8-connected components of the plain Otsu threshold of the unblurred image (no hole filling,
/// no splitting), pieces under <c>--min-piece</c> px dropped.</item>
/// <item>Merged masks ("a UIS method that merges adjacent instances"): the reference masks, with pairs closer than <c>--merge-gap</c> px
/// (smallest pixel-to-pixel distance) merged greedily, closest first, each object in at most one pair; a merged mask is the union
/// closed with a disc of radius gap/2 + 2, so it bridges the gap as one blob.</item>
/// </list>
/// <c>photo-pairs</c> reports, for every merged pair and each results file, the best IoU of a result with each of the two reference
/// objects and whether two different results match them at IoU ≥ 0.5 ("split").
/// </summary>
public static class PhotoReference
{
    public static int Run(string[] args)
    {
        if (args.Length < 3) throw new ArgumentException("usage: photo-reference IMAGE OUT_DIR [--blur 2] [--min-area 300] [--persistence 3] [--merge-gap 12] [--min-piece 50]");
        string imagePath = args[1], outDir = args[2];
        double blur = Opt(args, "--blur", 2.0), persistence = Opt(args, "--persistence", 3.0), mergeGap = Opt(args, "--merge-gap", 12.0);
        int minArea = (int)Opt(args, "--min-area", 300), minPiece = (int)Opt(args, "--min-piece", 50), background = (int)Opt(args, "--background", 40);
        double thresholdScale = Opt(args, "--threshold-scale", 1.0), lowScale = Opt(args, "--low-scale", 0.6);
        int grow = (int)Opt(args, "--grow", 4);
        bool convex = !args.Contains("--no-convex");

        var rgb = ImageIO.ReadRgb(imagePath);
        int w = rgb.Width, h = rgb.Height, hw = w * h;
        var grey = new float[hw];
        for (int i = 0; i < hw; i++) grey[i] = 0.299f * rgb.Pixels[3 * i] + 0.587f * rgb.Pixels[3 * i + 1] + 0.114f * rgb.Pixels[3 * i + 2];

        // 1. reference
        var blurred = GaussianBlur(grey, w, h, blur);
        // uneven lighting (the coins photo is brighter at the top): subtract the background, a grey opening with a square larger than any object
        if (background > 0)
        {
            var opened = MaxFilter(MinFilter(blurred, w, h, background), w, h, background);
            for (int i = 0; i < hw; i++) blurred[i] -= opened[i];
        }
        int tBlur = Otsu(blurred);
        double tUsed = tBlur * thresholdScale;
        var fg = new bool[hw];
        for (int i = 0; i < hw; i++) fg[i] = blurred[i] > tUsed;
        FillHoles(fg, w, h);
        var pieces = ConnectedComponents.Label(fg, w, h, 8, minArea);
        for (int i = 0; i < hw; i++) fg[i] = pieces.Labels[i] != 0;
        var bg = fg.Select(b => !b).ToArray();
        var dist = EdgeRegions.DistanceToEdges(bg, w, h);
        var cores = EdgeRegions.PersistentCores(dist, bg, w, h, persistence, 1);
        var labels = (int[])cores.Labels.Clone();
        EdgeRegions.Flood(labels, dist, w, h);
        for (int i = 0; i < hw; i++) if (!fg[i]) labels[i] = 0;
        // hysteresis: each object grows by up to --grow px into the pixels above --low-scale × the threshold (the darker rims of the coins)
        if (grow > 0)
        {
            var low = new bool[hw];
            for (int i = 0; i < hw; i++) low[i] = blurred[i] > tBlur * lowScale;
            GrowInto(labels, low, w, h, grow);
        }
        if (convex) ConvexHulls(labels, cores.Count, w, h);
        var reference = Enumerable.Range(1, cores.Count)
            .Select(c => labels.Select(l => l == c ? (byte)1 : (byte)0).ToArray())
            .Where(m => m.Any(v => v != 0))
            .ToList();
        reference = ReadingOrder(reference, w);
        Console.WriteLine($"reference: blur σ {blur}, background opening {2 * background + 1} px, Otsu threshold {tBlur} × {thresholdScale} on the corrected image, grown ≤ {grow} px into {lowScale} × threshold, convex hulls {(convex ? "on" : "off")}, {pieces.Count} pieces ≥ {minArea} px, {reference.Count} objects after the split (persistence {persistence} px)");

        // 2. Otsu masks
        int tRaw = Otsu(grey);
        var fgRaw = new bool[hw];
        for (int i = 0; i < hw; i++) fgRaw[i] = grey[i] > tRaw;
        var cc = ConnectedComponents.Label(fgRaw, w, h, 8, minPiece);
        var otsu = Enumerable.Range(1, cc.Count).Select(c => cc.Labels.Select(l => l == c ? (byte)1 : (byte)0).ToArray()).ToList();
        int holes = otsu.Count(m => HasHole(m, w, h));
        Console.WriteLine($"otsu masks: threshold {tRaw} on the unblurred image, {otsu.Count} components ≥ {minPiece} px, {holes} with holes");

        // 3. merged masks
        var gaps = new List<(int A, int B, double Gap)>();
        var dt = reference.Select(m => EdgeRegions.DistanceToEdges(m.Select(v => v != 0).ToArray(), w, h)).ToList();
        for (int a = 0; a < reference.Count; a++)
            for (int b = a + 1; b < reference.Count; b++)
            {
                double g = double.PositiveInfinity;
                for (int i = 0; i < hw; i++) if (reference[b][i] != 0 && dt[a][i] < g) g = dt[a][i];
                if (g <= mergeGap) gaps.Add((a, b, g));
            }
        var used = new bool[reference.Count];
        var pairs = new List<(int A, int B, double Gap)>();
        foreach (var p in gaps.OrderBy(p => p.Gap).ThenBy(p => p.A).ThenBy(p => p.B))
        {
            if (used[p.A] || used[p.B]) continue;
            used[p.A] = used[p.B] = true;
            pairs.Add(p);
        }
        var merged = new List<byte[]>();
        for (int k = 0; k < reference.Count; k++) if (!used[k]) merged.Add(reference[k]);
        foreach (var (a, b, g) in pairs)
        {
            var u = new bool[hw];
            for (int i = 0; i < hw; i++) u[i] = reference[a][i] != 0 || reference[b][i] != 0;
            u = Close(u, w, h, g / 2 + 2);
            merged.Add(u.Select(v => v ? (byte)1 : (byte)0).ToArray());
        }
        Console.WriteLine($"merged masks: {pairs.Count} pairs closer than {mergeGap} px merged (gaps {string.Join(", ", pairs.Select(p => p.Gap.ToString("F1", CultureInfo.InvariantCulture)))} px), {merged.Count} masks");

        // files
        Directory.CreateDirectory(Path.Combine(outDir, "images"));
        string fileName = Path.GetFileName(imagePath);
        File.Copy(imagePath, Path.Combine(outDir, "images", fileName), overwrite: true);
        var image = new CocoImage(1, w, h, fileName);
        var info = new CocoDataset { Images = { image } };
        CocoFiles.WriteInstances(Path.Combine(outDir, "image-info.json"), info);
        var gt = new CocoDataset { Images = { image }, Categories = { new CocoCategory(1, "object") } };
        for (int k = 0; k < reference.Count; k++)
        {
            var rle = Rle.Encode(reference[k], h, w);
            gt.Annotations.Add(new CocoAnnotation { Id = k + 1, ImageId = 1, CategoryId = 1, Segmentation = CocoSegmentation.FromRle(rle), Area = rle.Area, Bbox = rle.ToBbox() });
        }
        CocoFiles.WriteInstances(Path.Combine(outDir, "reference.json"), gt);
        CocoFiles.WriteResults(Path.Combine(outDir, "otsu.json"), otsu.Select(m => Result(m, h, w)));
        CocoFiles.WriteResults(Path.Combine(outDir, "merged.json"), merged.Select(m => Result(m, h, w)));
        File.WriteAllText(Path.Combine(outDir, "pairs.json"), JsonSerializer.Serialize(pairs.Select(p => new { a = p.A + 1, b = p.B + 1, gap = Math.Round(p.Gap, 2) }), new JsonSerializerOptions { WriteIndented = true }));
        ImageIO.WriteRgbPng(Path.Combine(outDir, "reference.overlay.png"), DemoImages.Overlay(rgb, reference));
        ImageIO.WriteRgbPng(Path.Combine(outDir, "otsu.overlay.png"), DemoImages.Overlay(rgb, otsu));
        ImageIO.WriteRgbPng(Path.Combine(outDir, "merged.overlay.png"), DemoImages.Overlay(rgb, merged));
        int viewScale = (int)Opt(args, "--view-scale", 0);
        if (viewScale > 1)
            foreach (var (name, r) in new[] { ("reference", reference), ("otsu", otsu), ("merged", merged) })
                ImageIO.WriteRgbPng(Path.Combine(outDir, $"{name}.overlay.x{viewScale}.png"), Enlarge(DemoImages.Overlay(rgb, r), viewScale));
        foreach (var (name, r) in new[] { ("otsu", otsu), ("merged", merged) })
        {
            var res = CocoFiles.ReadResults(Path.Combine(outDir, name + ".json"), gt);
            var e = CocoEvaluator.Evaluate(gt, res, CocoIouType.Segm);
            Console.WriteLine($"{name,-7} vs reference: AP {e.Stats[0]:F3} AP50 {e.Stats[1]:F3} AP75 {e.Stats[2]:F3} AR100 {e.Stats[8]:F3} ({r.Count} masks)");
        }
        Console.WriteLine($"written: {outDir}/images/{fileName}, image-info.json, reference.json, otsu.json, merged.json, pairs.json, *.overlay.png");
        return 0;
    }

    /// <summary><c>photo-pairs OUT_DIR RESULTS...</c>: which merged pairs of photo-reference are split in each results file.</summary>
    public static int Pairs(string[] args)
    {
        if (args.Length < 3) throw new ArgumentException("usage: photo-pairs OUT_DIR RESULTS.json [RESULTS.json ...]");
        string dir = args[1];
        var gt = CocoFiles.ReadInstances(Path.Combine(dir, "reference.json"));
        var img = gt.Images[0];
        var refs = gt.Annotations.ToDictionary(a => a.Id, a => a.Segmentation!.ToRle(img.Height, img.Width));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "pairs.json")));
        var pairs = doc.RootElement.EnumerateArray().Select(e => (A: e.GetProperty("a").GetInt64(), B: e.GetProperty("b").GetInt64(), Gap: e.GetProperty("gap").GetDouble())).ToList();
        foreach (var path in args.Skip(2))
        {
            var res = CocoFiles.ReadResults(path, gt).Where(r => r.Segmentation is not null).Select(r => (Rle: r.Segmentation!.ToRle(img.Height, img.Width), r.Score)).ToList();
            int split = 0;
            Console.WriteLine($"{path}: {res.Count} masks");
            foreach (var (a, b, gap) in pairs)
            {
                var (ia, ja) = Rle.BestMatch(res.Select(r => r.Rle).ToList(), refs[a]);
                var (ib, jb) = Rle.BestMatch(res.Select(r => r.Rle).ToList(), refs[b]);
                bool isSplit = ia >= 0.5 && ib >= 0.5 && ja != jb;
                if (isSplit) split++;
                Console.WriteLine($"  pair {a}+{b} (gap {gap:F1} px): best IoU {ia:F3} (mask {ja}, score {(ja >= 0 ? res[ja].Score : 0):F3}) / {ib:F3} (mask {jb}, score {(jb >= 0 ? res[jb].Score : 0):F3}) → {(isSplit ? "split" : "not split")}");
            }
            Console.WriteLine($"  {split} of {pairs.Count} pairs split");
        }
        return 0;
    }

    /// <summary>Breadth-first growth of the labels into unlabelled <paramref name="allowed"/> pixels, <paramref name="steps"/> 8-neighbour steps at most (a pixel reached by two labels in one step keeps the first).</summary>
    static void GrowInto(int[] labels, bool[] allowed, int w, int h, int steps)
    {
        var front = new List<int>();
        for (int i = 0; i < labels.Length; i++) if (labels[i] > 0) front.Add(i);
        for (int s = 0; s < steps && front.Count > 0; s++)
        {
            var next = new List<int>();
            foreach (int i in front)
            {
                int y = i / w, x = i % w;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        if ((uint)yy >= (uint)h || (uint)xx >= (uint)w) continue;
                        int j = yy * w + xx;
                        if (labels[j] != 0 || !allowed[j]) continue;
                        labels[j] = labels[i];
                        next.Add(j);
                    }
            }
            front = next;
        }
    }

    /// <summary>
    /// Replaces every labelled object by its convex hull (pixel centres inside the hull of its pixel centres): dark patches of a coin's relief
    /// that fell below the threshold at its rim become part of it again. A pixel inside two hulls keeps its label, or stays 0.
    /// </summary>
    static void ConvexHulls(int[] labels, int count, int w, int h)
    {
        var hulls = new List<(double X, double Y)>?[count + 1];
        var points = new List<(double X, double Y)>[count + 1];
        for (int c = 0; c <= count; c++) points[c] = new List<(double, double)>();
        for (int i = 0; i < labels.Length; i++) if (labels[i] > 0) points[labels[i]].Add((i % w, i / w));
        for (int c = 1; c <= count; c++) if (points[c].Count >= 3) hulls[c] = Hull(points[c]);
        var claim = new int[labels.Length];
        for (int c = 1; c <= count; c++)
        {
            var hull = hulls[c];
            if (hull is null) continue;
            int x0 = (int)hull.Min(p => p.X), x1 = (int)hull.Max(p => p.X), y0 = (int)hull.Min(p => p.Y), y1 = (int)hull.Max(p => p.Y);
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                {
                    if (!Inside(hull, x, y)) continue;
                    int i = y * w + x;
                    claim[i] = claim[i] == 0 ? c : -1;
                }
        }
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] == 0 && claim[i] > 0) labels[i] = claim[i];
    }

    /// <summary>Convex hull (Andrew's monotone chain), counter-clockwise in image coordinates, no collinear points.</summary>
    static List<(double X, double Y)> Hull(List<(double X, double Y)> pts)
    {
        var p = pts.Distinct().OrderBy(q => q.X).ThenBy(q => q.Y).ToList();
        if (p.Count < 3) return p;
        double Cross((double X, double Y) o, (double X, double Y) a, (double X, double Y) b) => (a.X - o.X) * (b.Y - o.Y) - (a.Y - o.Y) * (b.X - o.X);
        var hull = new List<(double X, double Y)>();
        for (int pass = 0; pass < 2; pass++)
        {
            int start = hull.Count;
            foreach (var q in pass == 0 ? p : Enumerable.Reverse(p))
            {
                while (hull.Count >= start + 2 && Cross(hull[^2], hull[^1], q) <= 0) hull.RemoveAt(hull.Count - 1);
                hull.Add(q);
            }
            hull.RemoveAt(hull.Count - 1);
        }
        return hull;
    }

    /// <summary>True when (x, y) lies inside or on the convex polygon <paramref name="hull"/> (consistent orientation).</summary>
    static bool Inside(List<(double X, double Y)> hull, double x, double y)
    {
        for (int k = 0; k < hull.Count; k++)
        {
            var a = hull[k];
            var b = hull[(k + 1) % hull.Count];
            if ((b.X - a.X) * (y - a.Y) - (b.Y - a.Y) * (x - a.X) < 0) return false;
        }
        return true;
    }

    /// <summary>Nearest-neighbour enlargement (for looking at masks closely).</summary>
    static RgbImage Enlarge(RgbImage img, int f)
    {
        var big = new RgbImage(img.Width * f, img.Height * f);
        for (int y = 0; y < big.Height; y++)
            for (int x = 0; x < big.Width; x++)
                for (int c = 0; c < 3; c++) big.Pixels[3 * (y * big.Width + x) + c] = img.Pixels[3 * ((y / f) * img.Width + x / f) + c];
        return big;
    }

    static CocoResult Result(byte[] m, int h, int w)
    {
        var rle = Rle.Encode(m, h, w);
        return new CocoResult { ImageId = 1, CategoryId = 1, Score = 1.0, Segmentation = CocoSegmentation.FromRle(rle), Bbox = rle.ToBbox() };
    }

    static double Opt(string[] args, string name, double fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>Objects in reading order: sorted by centre row; a new row starts where a centre lies more than half the median object height below the first centre of the current row; left to right within a row.</summary>
    static List<byte[]> ReadingOrder(List<byte[]> masks, int w)
    {
        if (masks.Count == 0) return masks;
        var c = masks.Select(m => (Mask: m, C: Centre(m, w), H: Height(m, w))).OrderBy(t => t.C.Y).ToList();
        double half = c.Select(t => t.H).OrderBy(v => v).ElementAt(c.Count / 2) / 2.0;
        var rows = new List<List<(byte[] Mask, (double X, double Y) C, int H)>>();
        foreach (var t in c)
        {
            if (rows.Count == 0 || t.C.Y - rows[^1][0].C.Y > half) rows.Add(new());
            rows[^1].Add(t);
        }
        return rows.SelectMany(r => r.OrderBy(t => t.C.X)).Select(t => t.Mask).ToList();
    }

    static int Height(byte[] m, int w)
    {
        int y0 = int.MaxValue, y1 = -1;
        for (int i = 0; i < m.Length; i++) if (m[i] != 0) { y0 = Math.Min(y0, i / w); y1 = Math.Max(y1, i / w); }
        return y1 - y0 + 1;
    }

    static (double X, double Y) Centre(byte[] m, int w)
    {
        double sx = 0, sy = 0;
        long n = 0;
        for (int i = 0; i < m.Length; i++) if (m[i] != 0) { sx += i % w; sy += i / w; n++; }
        return (sx / n, sy / n);
    }

    /// <summary>Separable Gaussian blur (kernel radius ⌈3σ⌉, borders clamped).</summary>
    public static float[] GaussianBlur(float[] img, int w, int h, double sigma)
    {
        if (sigma <= 0) return (float[])img.Clone();
        int r = (int)Math.Ceiling(3 * sigma);
        var k = new double[2 * r + 1];
        double sum = 0;
        for (int i = -r; i <= r; i++) sum += k[i + r] = Math.Exp(-i * i / (2 * sigma * sigma));
        for (int i = 0; i < k.Length; i++) k[i] /= sum;
        var tmp = new float[w * h];
        var result = new float[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double s = 0;
                for (int i = -r; i <= r; i++) s += k[i + r] * img[y * w + Math.Clamp(x + i, 0, w - 1)];
                tmp[y * w + x] = (float)s;
            }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double s = 0;
                for (int i = -r; i <= r; i++) s += k[i + r] * tmp[Math.Clamp(y + i, 0, h - 1) * w + x];
                result[y * w + x] = (float)s;
            }
        return result;
    }

    /// <summary>Minimum over the (2r+1)² square around each pixel (separable; the square is cut at the image border).</summary>
    static float[] MinFilter(float[] a, int w, int h, int r) => RankFilter(a, w, h, r, Math.Min);

    /// <summary>Maximum over the (2r+1)² square around each pixel.</summary>
    static float[] MaxFilter(float[] a, int w, int h, int r) => RankFilter(a, w, h, r, Math.Max);

    static float[] RankFilter(float[] a, int w, int h, int r, Func<float, float, float> op)
    {
        var tmp = new float[w * h];
        var result = new float[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float v = a[y * w + x];
                for (int xx = Math.Max(0, x - r); xx <= Math.Min(w - 1, x + r); xx++) v = op(v, a[y * w + xx]);
                tmp[y * w + x] = v;
            }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float v = tmp[y * w + x];
                for (int yy = Math.Max(0, y - r); yy <= Math.Min(h - 1, y + r); yy++) v = op(v, tmp[yy * w + x]);
                result[y * w + x] = v;
            }
        return result;
    }

    /// <summary>Otsu's threshold of values in [0, 255] (256-bin histogram): a pixel is foreground when its value is above the returned bin.</summary>
    public static int Otsu(float[] values)
    {
        var hist = new long[256];
        foreach (var v in values) hist[Math.Clamp((int)Math.Round(v), 0, 255)]++;
        long total = values.Length;
        double sumAll = 0;
        for (int i = 0; i < 256; i++) sumAll += i * (double)hist[i];
        double sumB = 0, best = -1;
        long wB = 0;
        int t = 0;
        for (int i = 0; i < 256; i++)
        {
            wB += hist[i];
            if (wB == 0) continue;
            long wF = total - wB;
            if (wF == 0) break;
            sumB += i * (double)hist[i];
            double mB = sumB / wB, mF = (sumAll - sumB) / wF;
            double between = (double)wB * wF * (mB - mF) * (mB - mF);
            if (between > best) { best = between; t = i; }
        }
        return t;
    }

    /// <summary>Sets the holes of <paramref name="fg"/> (background pixels not 4-connected to the image border).</summary>
    static void FillHoles(bool[] fg, int w, int h)
    {
        var f = fg.Select(b => b ? 1f : 0f).ToArray();
        RefineGrid.FillHoles(f, 1, h, w);
        for (int i = 0; i < fg.Length; i++) fg[i] = f[i] > 0;
    }

    static bool HasHole(byte[] m, int w, int h)
    {
        var f = m.Select(v => v != 0).ToArray();
        var g = (bool[])f.Clone();
        FillHoles(g, w, h);
        return !f.SequenceEqual(g);
    }

    /// <summary>Binary closing with a Euclidean disc of radius <paramref name="r"/> (dilation then erosion, via distance transforms).</summary>
    static bool[] Close(bool[] m, int w, int h, double r)
    {
        var d = EdgeRegions.DistanceToEdges(m, w, h);
        var dil = d.Select(v => v <= r).ToArray();
        var d2 = EdgeRegions.DistanceToEdges(dil.Select(v => !v).ToArray(), w, h);
        return d2.Select(v => v > r).ToArray();
    }
}
