using DiffEgg.Common;
using DiffEgg.Edges;

namespace DiffEgg.Evaluation;

/// <summary>How an edge map and a ground-truth id map of different resolutions are brought together.</summary>
public enum EdgeResolutionMatch
{
    /// <summary>Sample the GT id map by nearest neighbour at the centres of the edge map's pixels (scores at the edge map's resolution).</summary>
    DownsampleGroundTruth,
    /// <summary>Upsample the edge map bilinearly (half-pixel centres, clamped at the border) to the GT resolution (scores at GT resolution).</summary>
    UpsampleEdgeMap,
}

/// <summary>Options of <see cref="EdgeQuality.Score"/>.</summary>
public sealed record EdgeQualityOptions
{
    /// <summary>Matching tolerance d in pixels of the compared resolution, Chebyshev distance (a (2d+1)×(2d+1) square).</summary>
    public int Tolerance { get; init; } = 1;
    public EdgeResolutionMatch Match { get; init; } = EdgeResolutionMatch.DownsampleGroundTruth;
    /// <summary>One-sided (1 px wide) GT boundaries: of each pair of 4-adjacent pixels with different ids only the one with the larger id is a boundary pixel.</summary>
    public bool ThinBoundary { get; init; }
    /// <summary>Ternary rule (Alg 2) that binarises the map: edge = value &gt; its upper threshold, interior = value &lt; its lower one.</summary>
    public TernaryRule Ternary { get; init; } = TernaryRule.Default;
}

/// <summary>Scores of one edge map against one ground-truth segment map (counts, so they can be pooled over images).</summary>
public sealed record EdgeScores
{
    public int Width { get; init; }
    public int Height { get; init; }
    /// <summary>The ternary rule's upper threshold the map was binarised at (edge = value &gt; threshold).</summary>
    public double Threshold { get; init; }
    /// <summary>The ternary rule's lower threshold (interior = value &lt; it).</summary>
    public double LowThreshold { get; init; }
    public int Predicted { get; init; }
    public int PredictedCorrect { get; init; }
    public int Boundary { get; init; }
    public int BoundaryRecalled { get; init; }
    /// <summary>True interior pixels: farther than the tolerance from every GT boundary pixel.</summary>
    public int TrueInterior { get; init; }
    /// <summary>Pixels the ternary rule calls interior.</summary>
    public int InteriorPredicted { get; init; }
    /// <summary>Pixels the ternary rule calls interior that are true interior pixels.</summary>
    public int InteriorPredictedCorrect { get; init; }
    /// <summary>GT boundary pixels the ternary rule calls interior (the error that stops refinement from splitting along that boundary).</summary>
    public int BoundaryAsInterior { get; init; }
    /// <summary>ROC AUC of GT boundary pixels vs interior pixels (farther than the tolerance from any boundary); NaN if either set is empty.</summary>
    public double Auc { get; init; }
    public int HardBoundary { get; init; }
    public int HardBoundaryRecalled { get; init; }
    public int HardPredicted { get; init; }
    public int HardPredictedCorrect { get; init; }
    /// <summary>ROC AUC of hard-pair boundary pixels vs the interior pixels of the pair members (farther than the tolerance from any boundary): does the map rank the boundary between two similar objects above their own texture? NaN if either set is empty.</summary>
    public double HardAuc { get; init; }
    /// <summary>Gap measure: summed boundary length (pixels) of the scored objects (<see cref="EdgeQuality.LargestRunCoverage"/>).</summary>
    public int ObjectBoundary { get; init; }
    /// <summary>Gap measure: of <see cref="ObjectBoundary"/>, the pixels covered by the largest connected edge run around their object.</summary>
    public int ObjectBoundaryInLargestRun { get; init; }
    /// <summary>Objects whose boundary was scored by the gap measure.</summary>
    public int Objects { get; init; }

    public double Precision => EdgeQuality.Ratio(PredictedCorrect, Predicted);
    public double Recall => EdgeQuality.Ratio(BoundaryRecalled, Boundary);
    public double F1 => EdgeQuality.F1(Precision, Recall);
    public double HardPrecision => EdgeQuality.Ratio(HardPredictedCorrect, HardPredicted);
    public double HardRecall => EdgeQuality.Ratio(HardBoundaryRecalled, HardBoundary);
    public double HardF1 => EdgeQuality.F1(HardPrecision, HardRecall);
    public double InteriorPrecision => EdgeQuality.Ratio(InteriorPredictedCorrect, InteriorPredicted);
    public double InteriorRecall => EdgeQuality.Ratio(InteriorPredictedCorrect, TrueInterior);
    /// <summary>Gap measure of this image: fraction of the objects' boundary length covered by the largest connected edge run around each object (NaN without objects).</summary>
    public double LargestRun => ObjectBoundary == 0 ? double.NaN : (double)ObjectBoundaryInLargestRun / ObjectBoundary;
}

/// <summary>Dataset-level edge quality: P/R/F1 pooled over pixels of all images (micro), AUC averaged over images (macro).</summary>
/// <remarks>Interior scores of the ternary rule's interior class, pooled over pixels: precision = interior-class pixels that are true interior
/// (farther than the tolerance from every boundary; NaN if the rule called no pixel interior), recall = true interior pixels in the interior class, and the fraction of GT boundary
/// pixels the rule calls interior.</remarks>
public sealed record EdgeSummary(int Images, double Precision, double Recall, double F1, double Auc,
    int HardImages, double HardPrecision, double HardRecall, double HardF1, double HardAuc,
    double InteriorPrecision = double.NaN, double InteriorRecall = double.NaN, double BoundaryAsInterior = double.NaN,
    double LargestRun = double.NaN, int Objects = 0);

/// <summary>
/// Boundary quality of a continuous edge map against ground-truth segments (things and stuff regions): boundary
/// precision/recall/F1 at a pixel tolerance after binarising at the upper threshold of a ternary rule (Alg 2, edge class; default
/// <see cref="TernaryRule.Default"/>), the rule's interior class against the pixels far from every boundary,
/// a threshold-free ROC AUC, and both restricted to hard-pair boundaries.
/// </summary>
public static class EdgeQuality
{
    internal static double Ratio(int num, int den) => den == 0 ? 1.0 : (double)num / den;
    internal static double F1(double p, double r) => p + r == 0 ? 0 : 2 * p * r / (p + r);

    /// <summary>GT boundary: pixels with at least one 4-neighbour (inside the image) of a different id — both sides of every contact.</summary>
    public static bool[] Boundary(int[] ids, int height, int width) => Boundary(ids, height, width, thin: false);

    /// <summary>GT boundary; with <paramref name="thin"/> only the larger-id side of each contact (a one-sided, 1 px wide boundary).</summary>
    public static bool[] Boundary(int[] ids, int height, int width, bool thin)
    {
        CheckSize(ids.Length, height, width, "id map");
        var b = new bool[ids.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x, v = ids[i];
                b[i] = (x > 0 && Differs(ids[i - 1], v, thin)) || (x + 1 < width && Differs(ids[i + 1], v, thin)) ||
                       (y > 0 && Differs(ids[i - width], v, thin)) || (y + 1 < height && Differs(ids[i + width], v, thin));
            }
        return b;
    }

    static bool Differs(int neighbour, int v, bool thin) => thin ? neighbour < v : neighbour != v;

    /// <summary>Boundary between two segments only: pixels of <paramref name="a"/> with a 4-neighbour in <paramref name="b"/>, and vice versa.</summary>
    public static bool[] PairBoundary(int[] ids, int height, int width, int a, int b) => PairBoundary(ids, height, width, a, b, thin: false);

    /// <summary>Boundary between two segments; with <paramref name="thin"/> only the pixels of the larger id of the two.</summary>
    public static bool[] PairBoundary(int[] ids, int height, int width, int a, int b, bool thin)
    {
        CheckSize(ids.Length, height, width, "id map");
        var m = new bool[ids.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x, v = ids[i];
                if (v != a && v != b) continue;
                int o = v == a ? b : a;
                if (thin && v < o) continue;
                if ((x > 0 && ids[i - 1] == o) || (x + 1 < width && ids[i + 1] == o) ||
                    (y > 0 && ids[i - width] == o) || (y + 1 < height && ids[i + width] == o)) m[i] = true;
            }
        return m;
    }

    /// <summary>Dilation by a (2d+1)×(2d+1) square: true where some set pixel lies within Chebyshev distance d (separable max filter).</summary>
    public static bool[] Dilate(bool[] mask, int height, int width, int d)
    {
        CheckSize(mask.Length, height, width, "mask");
        if (d < 0) throw new ArgumentException($"tolerance {d} must be >= 0");
        if (d == 0) return (bool[])mask.Clone();
        var tmp = new bool[mask.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                bool any = false;
                for (int k = Math.Max(0, x - d), e = Math.Min(width - 1, x + d); k <= e && !any; k++) any = mask[y * width + k];
                tmp[y * width + x] = any;
            }
        var res = new bool[mask.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                bool any = false;
                for (int k = Math.Max(0, y - d), e = Math.Min(height - 1, y + d); k <= e && !any; k++) any = tmp[k * width + x];
                res[y * width + x] = any;
            }
        return res;
    }

    /// <summary>The μ+σ threshold (mean plus population standard deviation) of DiffEGG's ternary rule (Alg 2).</summary>
    public static double MeanPlusStd(float[] map)
    {
        double sum = 0;
        foreach (float v in map) sum += v;
        double mean = sum / map.Length, ss = 0;
        foreach (float v in map) { double d = v - mean; ss += d * d; }
        return mean + Math.Sqrt(ss / map.Length);
    }

    /// <summary>Exact ROC AUC of scores of <paramref name="positive"/> pixels over <paramref name="negative"/> pixels via the Mann–Whitney U statistic with mid-ranks for ties; NaN if a set is empty.</summary>
    public static double RocAuc(float[] scores, bool[] positive, bool[] negative)
    {
        if (positive.Length != scores.Length || negative.Length != scores.Length)
            throw new ArgumentException($"AUC masks have {positive.Length}/{negative.Length} pixels, scores {scores.Length}");
        var items = new List<(float V, bool Pos)>();
        for (int i = 0; i < scores.Length; i++)
        {
            if (positive[i] && negative[i]) throw new ArgumentException($"pixel {i} is both positive and negative");
            if (positive[i]) items.Add((scores[i], true));
            else if (negative[i]) items.Add((scores[i], false));
        }
        long nPos = items.Count(t => t.Pos), nNeg = items.Count - nPos;
        if (nPos == 0 || nNeg == 0) return double.NaN;
        items.Sort((p, q) => p.V.CompareTo(q.V));
        double rankSum = 0;
        for (int i = 0; i < items.Count;)
        {
            int j = i;
            while (j + 1 < items.Count && items[j + 1].V == items[i].V) j++;
            double midRank = (i + j) / 2.0 + 1; // ranks are 1-based
            for (int k = i; k <= j; k++) if (items[k].Pos) rankSum += midRank;
            i = j + 1;
        }
        double u = rankSum - nPos * (nPos + 1) / 2.0;
        return u / ((double)nPos * nNeg);
    }

    /// <summary>Nearest-neighbour resampling of an id map, sampling at the centres of the target pixels.</summary>
    public static int[] ResampleNearest(int[] ids, int height, int width, int newHeight, int newWidth)
    {
        CheckSize(ids.Length, height, width, "id map");
        var r = new int[newHeight * newWidth];
        for (int y = 0; y < newHeight; y++)
        {
            int sy = Math.Min(height - 1, (int)((y + 0.5) * height / newHeight));
            for (int x = 0; x < newWidth; x++)
            {
                int sx = Math.Min(width - 1, (int)((x + 0.5) * width / newWidth));
                r[y * newWidth + x] = ids[sy * width + sx];
            }
        }
        return r;
    }

    /// <summary>Bilinear resampling of a map with half-pixel centres (align_corners = false), clamped at the border.</summary>
    public static float[] ResampleBilinear(float[] map, int height, int width, int newHeight, int newWidth)
    {
        CheckSize(map.Length, height, width, "edge map");
        var r = new float[newHeight * newWidth];
        for (int y = 0; y < newHeight; y++)
        {
            double sy = Math.Clamp((y + 0.5) * height / newHeight - 0.5, 0, height - 1);
            int y0 = (int)sy, y1 = Math.Min(height - 1, y0 + 1);
            double ty = sy - y0;
            for (int x = 0; x < newWidth; x++)
            {
                double sx = Math.Clamp((x + 0.5) * width / newWidth - 0.5, 0, width - 1);
                int x0 = (int)sx, x1 = Math.Min(width - 1, x0 + 1);
                double tx = sx - x0;
                double top = map[y0 * width + x0] * (1 - tx) + map[y0 * width + x1] * tx;
                double bottom = map[y1 * width + x0] * (1 - tx) + map[y1 * width + x1] * tx;
                r[y * newWidth + x] = (float)(top * (1 - ty) + bottom * ty);
            }
        }
        return r;
    }

    /// <summary>
    /// Scores an edge map [edgeHeight, edgeWidth] (higher = edge) against a GT segment-id map [gtHeight, gtWidth];
    /// <paramref name="hardPairs"/> are pairs of segment ids whose shared boundary is scored separately.
    /// </summary>
    /// <param name="objects">segment ids whose boundaries the gap measure scores (<see cref="LargestRunCoverage"/>); null = every segment of the map</param>
    public static EdgeScores Score(float[] edgeMap, int edgeHeight, int edgeWidth, int[] segmentIds, int gtHeight, int gtWidth,
        IReadOnlyList<(int A, int B)>? hardPairs = null, EdgeQualityOptions? options = null, IReadOnlyCollection<int>? objects = null)
    {
        var o = options ?? new EdgeQualityOptions();
        if (o.Tolerance < 0) throw new ArgumentException($"tolerance {o.Tolerance} must be >= 0");
        CheckSize(edgeMap.Length, edgeHeight, edgeWidth, "edge map");
        CheckSize(segmentIds.Length, gtHeight, gtWidth, "ground-truth id map");
        for (int i = 0; i < edgeMap.Length; i++)
            if (!float.IsFinite(edgeMap[i]))
                throw new DiffEggException($"edge map [{edgeHeight}x{edgeWidth}] has a non-finite value ({edgeMap[i]}) at row {i / edgeWidth}, column {i % edgeWidth}");

        float[] map = edgeMap; int[] ids = segmentIds; int h = edgeHeight, w = edgeWidth;
        if (edgeHeight != gtHeight || edgeWidth != gtWidth)
        {
            if (o.Match == EdgeResolutionMatch.DownsampleGroundTruth) ids = ResampleNearest(segmentIds, gtHeight, gtWidth, edgeHeight, edgeWidth);
            else { map = ResampleBilinear(edgeMap, edgeHeight, edgeWidth, gtHeight, gtWidth); h = gtHeight; w = gtWidth; }
        }
        int n = h * w, d = o.Tolerance;
        var (lowThr, thr) = o.Ternary.Thresholds(map);
        var pred = new bool[n];
        for (int i = 0; i < n; i++) pred[i] = map[i] > thr;

        var gt = Boundary(ids, h, w, o.ThinBoundary);
        var gtNear = Dilate(gt, h, w, d);
        var predNear = Dilate(pred, h, w, d);
        var interior = new bool[n];
        for (int i = 0; i < n; i++) interior[i] = !gtNear[i];

        int predicted = 0, predCorrect = 0, boundary = 0, recalled = 0, trueInterior = 0, intPred = 0, intCorrect = 0, boundaryAsInterior = 0;
        for (int i = 0; i < n; i++)
        {
            if (pred[i]) { predicted++; if (gtNear[i]) predCorrect++; }
            if (gt[i]) { boundary++; if (predNear[i]) recalled++; }
            bool predInterior = map[i] < lowThr;
            if (interior[i]) trueInterior++;
            if (predInterior) { intPred++; if (interior[i]) intCorrect++; if (gt[i]) boundaryAsInterior++; }
        }

        // Hard-pair boundaries: union over the pairs of the two-sided boundary between the two members.
        var hard = new bool[n];
        var pairRegion = new bool[n];
        if (hardPairs != null)
            foreach (var (a, b) in hardPairs)
            {
                var pb = PairBoundary(ids, h, w, a, b, o.ThinBoundary);
                for (int i = 0; i < n; i++)
                {
                    hard[i] |= pb[i];
                    pairRegion[i] |= ids[i] == a || ids[i] == b;
                }
            }
        var hardNear = Dilate(hard, h, w, d);
        var other = new bool[n];
        for (int i = 0; i < n; i++) other[i] = gt[i] && !hard[i];
        var otherNear = Dilate(other, h, w, d);
        var pairInterior = new bool[n];
        for (int i = 0; i < n; i++) pairInterior[i] = pairRegion[i] && interior[i];
        int hardB = 0, hardRec = 0, hardPred = 0, hardPredCorrect = 0;
        for (int i = 0; i < n; i++)
        {
            if (hard[i]) { hardB++; if (predNear[i]) hardRec++; }
            // Hard precision: predicted pixels inside the pair members, except those explained only by another boundary.
            if (pred[i] && pairRegion[i] && (hardNear[i] || !otherNear[i])) { hardPred++; if (hardNear[i]) hardPredCorrect++; }
        }

        var run = LargestRunCoverage(pred, ids, h, w, objects ?? ids.Distinct().ToArray(), d);

        return new EdgeScores
        {
            Width = w, Height = h, Threshold = thr, LowThreshold = lowThr,
            ObjectBoundary = run.Boundary, ObjectBoundaryInLargestRun = run.Covered, Objects = run.Objects,
            TrueInterior = trueInterior, InteriorPredicted = intPred, InteriorPredictedCorrect = intCorrect, BoundaryAsInterior = boundaryAsInterior,
            Predicted = predicted, PredictedCorrect = predCorrect, Boundary = boundary, BoundaryRecalled = recalled,
            Auc = RocAuc(map, gt, interior),
            HardBoundary = hardB, HardBoundaryRecalled = hardRec, HardPredicted = hardPred, HardPredictedCorrect = hardPredCorrect,
            HardAuc = hardB == 0 ? double.NaN : RocAuc(map, hard, pairInterior),
        };
    }

    /// <summary>Pools per-image scores: P/R/F1 from summed pixel counts, AUC as the mean of the per-image AUCs (hard: over images with a hard boundary).</summary>
    public static EdgeSummary Aggregate(IReadOnlyCollection<EdgeScores> scores)
    {
        int pred = scores.Sum(s => s.Predicted), pc = scores.Sum(s => s.PredictedCorrect);
        int b = scores.Sum(s => s.Boundary), br = scores.Sum(s => s.BoundaryRecalled);
        var hardImgs = scores.Where(s => s.HardBoundary > 0).ToList();
        int hp = hardImgs.Sum(s => s.HardPredicted), hpc = hardImgs.Sum(s => s.HardPredictedCorrect);
        int hb = hardImgs.Sum(s => s.HardBoundary), hbr = hardImgs.Sum(s => s.HardBoundaryRecalled);
        double p = Ratio(pc, pred), r = Ratio(br, b), hP = Ratio(hpc, hp), hR = Ratio(hbr, hb);
        var aucs = scores.Select(s => s.Auc).Where(v => !double.IsNaN(v)).ToList();
        var haucs = hardImgs.Select(s => s.HardAuc).Where(v => !double.IsNaN(v)).ToList();
        int ip = scores.Sum(s => s.InteriorPredicted), ic = scores.Sum(s => s.InteriorPredictedCorrect), ti = scores.Sum(s => s.TrueInterior);
        int bai = scores.Sum(s => s.BoundaryAsInterior);
        long ob = scores.Sum(s => (long)s.ObjectBoundary), oc = scores.Sum(s => (long)s.ObjectBoundaryInLargestRun);
        return new EdgeSummary(scores.Count, p, r, F1(p, r), aucs.Count == 0 ? double.NaN : aucs.Average(),
            hardImgs.Count, hardImgs.Count == 0 ? double.NaN : hP, hardImgs.Count == 0 ? double.NaN : hR,
            hardImgs.Count == 0 ? double.NaN : F1(hP, hR), haucs.Count == 0 ? double.NaN : haucs.Average(),
            ip == 0 ? double.NaN : (double)ic / ip, Ratio(ic, ti), Ratio(bai, b),
            ob == 0 ? double.NaN : (double)oc / ob, scores.Sum(s => s.Objects));
    }

    /// <summary>Result of <see cref="LargestRunCoverage"/>: summed boundary length of the scored objects, the part of it covered by each object's largest edge run, and the number of objects scored.</summary>
    public readonly record struct RunCoverage(int Boundary, int Covered, int Objects);

    /// <summary>
    /// Gap measure ("largest-run coverage"): for each object o of <paramref name="objects"/> present in <paramref name="ids"/>, its boundary B(o) =
    /// the pixels of o with a 4-neighbour (inside the image) of another id; the predicted edge pixels are split into 8-connected runs;
    /// a run covers a pixel of B(o) if it has a pixel within Chebyshev distance <paramref name="tolerance"/> of it; the object's score is the
    /// number of pixels of B(o) covered by its single best run. Returned summed over the objects (pool over images by summing; the
    /// measure is Covered / Boundary). A closed contour scores |B(o)|; the same pixels broken into pieces score only the largest piece,
    /// while boundary recall would count them all.
    /// </summary>
    public static RunCoverage LargestRunCoverage(bool[] predicted, int[] ids, int height, int width, IReadOnlyCollection<int> objects, int tolerance)
    {
        CheckSize(predicted.Length, height, width, "edge mask");
        CheckSize(ids.Length, height, width, "id map");
        if (tolerance < 0) throw new ArgumentException($"tolerance {tolerance} must be >= 0");
        // 8-connected runs of predicted pixels: label 1..n (0 = no edge)
        var run = new int[predicted.Length];
        int runs = 0;
        var stack = new Stack<int>();
        for (int s = 0; s < predicted.Length; s++)
        {
            if (!predicted[s] || run[s] != 0) continue;
            run[s] = ++runs;
            stack.Push(s);
            while (stack.Count > 0)
            {
                int i = stack.Pop(), y = i / width, x = i % width;
                for (int yy = Math.Max(0, y - 1); yy <= Math.Min(height - 1, y + 1); yy++)
                    for (int xx = Math.Max(0, x - 1); xx <= Math.Min(width - 1, x + 1); xx++)
                    {
                        int j = yy * width + xx;
                        if (predicted[j] && run[j] == 0) { run[j] = runs; stack.Push(j); }
                    }
            }
        }
        var wanted = new HashSet<int>(objects);
        var perObject = new Dictionary<int, (int Boundary, Dictionary<int, int> ByRun)>();
        var seen = new HashSet<int>();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x, v = ids[i];
                if (!wanted.Contains(v)) continue;
                bool onBoundary = (x > 0 && ids[i - 1] != v) || (x + 1 < width && ids[i + 1] != v) ||
                                  (y > 0 && ids[i - width] != v) || (y + 1 < height && ids[i + width] != v);
                if (!onBoundary) continue;
                if (!perObject.TryGetValue(v, out var acc)) acc = (0, new Dictionary<int, int>());
                seen.Clear();
                for (int yy = Math.Max(0, y - tolerance); yy <= Math.Min(height - 1, y + tolerance); yy++)
                    for (int xx = Math.Max(0, x - tolerance); xx <= Math.Min(width - 1, x + tolerance); xx++)
                    {
                        int r = run[yy * width + xx];
                        if (r != 0 && seen.Add(r)) acc.ByRun[r] = acc.ByRun.GetValueOrDefault(r) + 1;
                    }
                perObject[v] = (acc.Boundary + 1, acc.ByRun);
            }
        int boundary = 0, covered = 0;
        foreach (var (b, byRun) in perObject.Values)
        {
            boundary += b;
            covered += byRun.Count == 0 ? 0 : byRun.Values.Max();
        }
        return new RunCoverage(boundary, covered, perObject.Count);
    }

    static void CheckSize(int length, int height, int width, string what)
    {
        if (height <= 0 || width <= 0 || length != height * width)
            throw new ArgumentException($"{what} has {length} values, expected {height}x{width} = {(long)height * width}");
    }
}
