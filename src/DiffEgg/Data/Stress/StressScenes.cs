using DiffEgg.Data.Synthetic;

namespace DiffEgg.Data.Stress;

/// <summary>How the boundary pixels of a stress scene's edge map are valued.</summary>
public enum StressEdgeKind
{
    /// <summary>Boundary pixels 255, the rest 0.</summary>
    Binary,
    /// <summary>Boundary pixels uniform in [0.7, 1.0] × 255 (a probability-like edge map).</summary>
    Soft,
    /// <summary>Ternary map as <c>diffegg edges</c> writes it: 255 edge, 128 uncertain, 0 interior; 30 % of the boundary pixels and half of the pixels next to the boundary are uncertain.</summary>
    Ternary,
}

/// <summary>Knobs of the refinement stress scenes (<see cref="StressScenes"/>); the defaults are the "mixed defects, 15 % gaps, 1 % clutter, soft edges" case.</summary>
public sealed record StressOptions
{
    /// <summary>Images per scene set.</summary>
    public int Count { get; init; } = 40;
    /// <summary>Image sides are drawn uniformly from [MinSide, MaxSide] (width and height independently).</summary>
    public int MinSide { get; init; } = 96;
    public int MaxSide { get; init; } = 160;
    /// <summary>Objects per image, drawn uniformly from [MinObjects, MaxObjects]; every object touches at least one other.</summary>
    public int MinObjects { get; init; } = 3;
    public int MaxObjects { get; init; } = 6;
    /// <summary>Fraction of the GapSize×GapSize blocks of the edge map that are blanked (edge gaps).</summary>
    public double GapFraction { get; init; } = 0.15;
    /// <summary>Side of a blanked block (pixels).</summary>
    public int GapSize { get; init; } = 8;
    /// <summary>Fraction of all pixels set to a random edge value (isolated clutter).</summary>
    public double ClutterRate { get; init; } = 0.01;
    public StressEdgeKind Edges { get; init; } = StressEdgeKind.Soft;
    /// <summary>Probability that a touching pair of objects is merged into one coarse mask (pairs taken in random order; an object is in at most one merged pair).</summary>
    public double MergeRate { get; init; } = 0.6;
    /// <summary>Probability that an object not merged is cut into two halves (two coarse masks) by a random line through its centroid.</summary>
    public double FragmentRate { get; init; } = 0.35;
    /// <summary>Every coarse mask is eroded or dilated (at random) by this many pixels (4-neighbour steps).</summary>
    public int Jitter { get; init; } = 1;
    /// <summary>Object similarity in [0, 1]: boundaries between two touching objects are weaker (values × (1 − 0.5·s)) and have extra gaps (s × GapFraction more blocks blanked on them), as an edge detector sees two objects of similar appearance.</summary>
    public double Similarity { get; init; }
    /// <summary>How much the coarse scores know about quality: score = s·IoU(mask, best object) + (1 − s)·uniform(0.05, 1) (0 = random scores, as many UIS methods' are relative to mask quality).</summary>
    public double ScoreInformation { get; init; }
    /// <summary>Edge thickness: boundary = pixels within this 4-neighbour distance of a label change (1 = the two pixels either side).</summary>
    public int EdgeWidth { get; init; } = 1;
    public ulong Seed { get; init; }

    /// <summary>Near-correct masks: every object its own mask, only the jitter.</summary>
    public StressOptions NearCorrect() => this with { MergeRate = 0, FragmentRate = 0 };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid knob.</summary>
    public void Validate()
    {
        if (Count < 1) throw new ArgumentException($"count must be ≥ 1, got {Count}");
        if (MinSide < 48 || MaxSide < MinSide) throw new ArgumentException($"sides must satisfy 48 ≤ min ≤ max, got {MinSide}..{MaxSide}");
        if (MinObjects < 2 || MaxObjects < MinObjects) throw new ArgumentException($"objects must satisfy 2 ≤ min ≤ max, got {MinObjects}..{MaxObjects}");
        foreach (var (name, v) in new[] { ("gap fraction", GapFraction), ("clutter rate", ClutterRate), ("merge rate", MergeRate), ("fragment rate", FragmentRate), ("similarity", Similarity) })
            if (!(v >= 0 && v <= 1)) throw new ArgumentException($"{name} must be in [0,1], got {v}");
        if (!(ScoreInformation >= 0 && ScoreInformation <= 1)) throw new ArgumentException($"score information must be in [0,1], got {ScoreInformation}");
        if (GapSize < 1) throw new ArgumentException($"gap size must be ≥ 1, got {GapSize}");
        if (Jitter < 0 || Jitter > 4) throw new ArgumentException($"jitter must be in 0..4, got {Jitter}");
        if (EdgeWidth < 1 || EdgeWidth > 3) throw new ArgumentException($"edge width must be in 1..3, got {EdgeWidth}");
    }
}

/// <summary>What a coarse mask of a stress scene is, relative to the ground truth.</summary>
public enum StressMaskKind { Jittered, Merged, Fragment }

/// <summary>A coarse mask of a stress scene: pixels (row-major, 1 = inside), the ground-truth objects it comes from, its kind and a score.</summary>
public sealed record StressMask(byte[] Pixels, int[] Objects, StressMaskKind Kind, double Score);

/// <summary>One stress scene: ground-truth instance labels (0 = background, 1..N), the edge map as 8-bit grey values, and coarse masks.</summary>
public sealed record StressScene(int Width, int Height, int[] Labels, int ObjectCount, byte[] EdgeGray, IReadOnlyList<StressMask> Masks, IReadOnlyList<(int A, int B)> TouchingPairs, StressEdgeKind EdgeKind);

/// <summary>
/// Refinement stress scenes (the <c>refine-stress</c> benchmark and the robustness tests): touching blob-shaped objects of one class,
/// an edge map made from the true instance boundaries and then damaged (blanked blocks = gaps, random clutter pixels, soft or
/// ternary values, weaker boundaries between similar objects), and coarse masks with the typical defects of unsupervised instance
/// masks (adjacent objects merged, objects cut in halves, 1-px erosion/dilation). Deterministic by <see cref="StressOptions.Seed"/>.
/// Built independently of <c>Data/Synthetic</c> (different shapes, placement and defects) so that refinement is checked on data its
/// defaults were not developed on.
/// </summary>
public static class StressScenes
{
    /// <summary>Generates <see cref="StressOptions.Count"/> scenes.</summary>
    public static List<StressScene> Generate(StressOptions o)
    {
        o.Validate();
        var list = new List<StressScene>(o.Count);
        for (int i = 0; i < o.Count; i++)
        {
            // one independent stream per image: image i is the same whatever Count is
            ulong s = o.Seed * 0x9E3779B97F4A7C15UL + (ulong)i;
            list.Add(One(o, new Xoshiro256(Xoshiro256.Mix(s))));
        }
        return list;
    }

    static StressScene One(StressOptions o, Xoshiro256 rng)
    {
        int W = o.MinSide + rng.NextInt(o.MaxSide - o.MinSide + 1), H = o.MinSide + rng.NextInt(o.MaxSide - o.MinSide + 1);
        var (labels, n) = PlaceObjects(o, rng, W, H);
        var pairs = TouchingPairs(labels, W, H, n);
        var edges = EdgeMap(o, rng, labels, W, H);
        var masks = CoarseMasks(o, rng, labels, W, H, n, pairs);
        if (o.ScoreInformation > 0)
            masks = masks.Select(m => m with { Score = o.ScoreInformation * BestIoU(m.Pixels, labels, n) + (1 - o.ScoreInformation) * m.Score }).ToList();
        return new StressScene(W, H, labels, n, edges, masks, pairs, o.Edges);
    }

    /// <summary>
    /// A weak semantic mask of a scene (class <paramref name="thing"/> on every object, <paramref name="stuff"/> elsewhere) with noise:
    /// <paramref name="passes"/> passes in which each pixel next to the other class takes it with probability <paramref name="flip"/>,
    /// then <paramref name="islands"/> small square islands (2–5 px) of the other class dropped at random.
    /// </summary>
    public static byte[] NoisySemantic(StressScene sc, ulong seed, byte thing = 1, byte stuff = 50, double flip = 0.3, int passes = 2, int islands = 6)
    {
        int W = sc.Width, H = sc.Height;
        var rng = new Xoshiro256(Xoshiro256.Mix(seed ^ 0x5E3A17C0FFEEUL));
        var cur = sc.Labels.Select(l => l != 0 ? thing : stuff).ToArray();
        for (int pass = 0; pass < passes; pass++)
        {
            var next = (byte[])cur.Clone();
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    int i = y * W + x;
                    foreach (int j in Neighbours(i, x, y, W, H))
                        if (cur[j] != cur[i]) { if (rng.NextDouble() < flip) next[i] = cur[j]; break; }
                }
            cur = next;
        }
        for (int k = 0; k < islands; k++)
        {
            int s = 2 + rng.NextInt(4), y0 = rng.NextInt(H - s), x0 = rng.NextInt(W - s);
            byte v = cur[(y0 + s / 2) * W + x0 + s / 2] == thing ? stuff : thing;
            for (int y = y0; y < y0 + s; y++)
                for (int x = x0; x < x0 + s; x++) cur[y * W + x] = v;
        }
        return cur;
    }

    static double BestIoU(byte[] mask, int[] labels, int n)
    {
        var inter = new long[n + 1]; var area = new long[n + 1]; long m = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            area[labels[i]]++;
            if (mask[i] == 0) continue;
            m++; inter[labels[i]]++;
        }
        double best = 0;
        for (int k = 1; k <= n; k++) best = Math.Max(best, (double)inter[k] / (area[k] + m - inter[k]));
        return best;
    }

    // ---- objects: wobbly ellipses placed to touch an earlier one; later objects occlude earlier ones ----

    static (int[] Labels, int N) PlaceObjects(StressOptions o, Xoshiro256 rng, int W, int H)
    {
        int target = o.MinObjects + rng.NextInt(o.MaxObjects - o.MinObjects + 1);
        for (int attempt = 0; ; attempt++)
        {
            var labels = new int[W * H];
            var centers = new List<(double X, double Y, double R)>();
            double rMin = Math.Min(W, H) * 0.11, rMax = Math.Min(W, H) * 0.2;
            int placed = 0;
            for (int tries = 0; placed < target && tries < 200; tries++)
            {
                double a = rng.Range(rMin, rMax), b = a * rng.Range(0.6, 1.0), rot = rng.Range(0, Math.PI);
                double cx, cy;
                if (placed == 0) { cx = rng.Range(W * 0.3, W * 0.7); cy = rng.Range(H * 0.3, H * 0.7); }
                else
                {
                    var (px, py, pr) = centers[rng.NextInt(centers.Count)];
                    double dir = rng.Range(0, 2 * Math.PI), d = (pr + (a + b) / 2) * rng.Range(0.7, 0.9);
                    cx = px + d * Math.Cos(dir); cy = py + d * Math.Sin(dir);
                }
                if (cx - a < 2 || cy - a < 2 || cx + a > W - 3 || cy + a > H - 3) continue;
                double k = 2 + rng.NextInt(3), phase = rng.Range(0, 2 * Math.PI), wob = rng.Range(0.03, 0.1);
                var trial = (int[])labels.Clone();
                int id = placed + 1;
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                    {
                        double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                        double u = dx * Math.Cos(rot) + dy * Math.Sin(rot), v = -dx * Math.Sin(rot) + dy * Math.Cos(rot);
                        double th = Math.Atan2(v, u);
                        double rr = Math.Sqrt(u * u / (a * a) + v * v / (b * b));
                        if (rr <= 1 + wob * Math.Sin(k * th + phase)) trial[y * W + x] = id;
                    }
                // every earlier object must keep ≥ 65 % of its area and stay one piece; the new one must touch an earlier one
                if (!Acceptable(trial, labels, W, H, id)) continue;
                labels = trial;
                centers.Add((cx, cy, (a + b) / 2));
                placed++;
            }
            if (placed >= 2 || attempt > 20) return (labels, placed);
        }
    }

    static bool Acceptable(int[] trial, int[] before, int W, int H, int id)
    {
        var areaBefore = new int[id + 1];
        var areaAfter = new int[id + 1];
        foreach (int l in before) areaBefore[l]++;
        foreach (int l in trial) areaAfter[l]++;
        if (areaAfter[id] < 80) return false;
        for (int l = 1; l < id; l++)
            if (areaAfter[l] < 0.65 * areaBefore[l] || !OnePiece(trial, W, H, l)) return false;
        if (id == 1) return true;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                if (trial[y * W + x] != id) continue;
                if ((x + 1 < W && trial[y * W + x + 1] is var r && r != id && r != 0) || (y + 1 < H && trial[(y + 1) * W + x] is var d && d != id && d != 0)
                    || (x > 0 && trial[y * W + x - 1] is var lft && lft != id && lft != 0) || (y > 0 && trial[(y - 1) * W + x] is var up && up != id && up != 0))
                    return true;
            }
        return false;
    }

    static bool OnePiece(int[] labels, int W, int H, int l)
    {
        int start = Array.IndexOf(labels, l);
        if (start < 0) return false;
        var seen = new bool[W * H];
        var stack = new Stack<int>();
        stack.Push(start); seen[start] = true;
        int count = 0;
        while (stack.Count > 0)
        {
            int i = stack.Pop(); count++;
            int y = i / W, x = i % W;
            foreach (int j in new[] { x > 0 ? i - 1 : -1, x + 1 < W ? i + 1 : -1, y > 0 ? i - W : -1, y + 1 < H ? i + W : -1 })
                if (j >= 0 && !seen[j] && labels[j] == l) { seen[j] = true; stack.Push(j); }
        }
        int total = 0;
        foreach (int v in labels) if (v == l) total++;
        return count == total;
    }

    /// <summary>Pairs of objects sharing at least 4 boundary pixel pairs (4-neighbourhood), a &lt; b.</summary>
    static List<(int, int)> TouchingPairs(int[] labels, int W, int H, int n)
    {
        var count = new int[(n + 1) * (n + 1)];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int a = labels[y * W + x];
                if (a == 0) continue;
                if (x + 1 < W) { int b = labels[y * W + x + 1]; if (b != 0 && b != a) count[Math.Min(a, b) * (n + 1) + Math.Max(a, b)]++; }
                if (y + 1 < H) { int b = labels[(y + 1) * W + x]; if (b != 0 && b != a) count[Math.Min(a, b) * (n + 1) + Math.Max(a, b)]++; }
            }
        var pairs = new List<(int, int)>();
        for (int a = 1; a <= n; a++)
            for (int b = a + 1; b <= n; b++)
                if (count[a * (n + 1) + b] >= 4) pairs.Add((a, b));
        return pairs;
    }

    // ---- edge map ----

    static byte[] EdgeMap(StressOptions o, Xoshiro256 rng, int[] labels, int W, int H)
    {
        // distance (4-neighbour steps) to the nearest label change, and whether that change is between two objects
        var boundary = new bool[W * H];
        var between = new bool[W * H];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int i = y * W + x, a = labels[i];
                void Check(int j)
                {
                    int b = labels[j];
                    if (b == a) return;
                    boundary[i] = true;
                    if (a != 0 && b != 0) between[i] = true;
                }
                if (x > 0) Check(i - 1);
                if (x + 1 < W) Check(i + 1);
                if (y > 0) Check(i - W);
                if (y + 1 < H) Check(i + W);
            }
        var thick = (bool[])boundary.Clone();
        var thickBetween = (bool[])between.Clone();
        for (int step = 1; step < o.EdgeWidth; step++)
        {
            var t2 = (bool[])thick.Clone(); var b2 = (bool[])thickBetween.Clone();
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    int i = y * W + x;
                    if (thick[i]) continue;
                    foreach (int j in Neighbours(i, x, y, W, H))
                        if (thick[j]) { t2[i] = true; b2[i] |= thickBetween[j]; }
                }
            thick = t2; thickBetween = b2;
        }
        var g = new byte[W * H];
        for (int i = 0; i < g.Length; i++)
        {
            if (!thick[i]) continue;
            double v = o.Edges switch
            {
                StressEdgeKind.Binary => 1.0,
                StressEdgeKind.Soft => rng.Range(0.7, 1.0),
                _ => rng.NextDouble() < 0.3 ? 0.5 : 1.0,
            };
            if (thickBetween[i]) v *= 1 - 0.5 * o.Similarity;
            g[i] = Gray(o.Edges, v);
        }
        if (o.Edges == StressEdgeKind.Ternary)
        {
            // an uncertain band: half of the pixels next to an edge pixel
            var band = new List<int>();
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    int i = y * W + x;
                    if (thick[i]) continue;
                    foreach (int j in Neighbours(i, x, y, W, H)) if (thick[j]) { band.Add(i); break; }
                }
            foreach (int i in band) if (rng.NextDouble() < 0.5) g[i] = 128;
        }
        // gaps: blanked blocks on a grid with a random offset; similar objects: extra blocks on the boundaries between objects
        int gs = o.GapSize, oy = rng.NextInt(gs), ox = rng.NextInt(gs);
        for (int by = -oy; by < H; by += gs)
            for (int bx = -ox; bx < W; bx += gs)
            {
                bool onBetween = false;
                for (int y = Math.Max(0, by); y < Math.Min(H, by + gs) && !onBetween; y++)
                    for (int x = Math.Max(0, bx); x < Math.Min(W, bx + gs); x++)
                        if (thickBetween[y * W + x]) { onBetween = true; break; }
                double p = o.GapFraction + (onBetween ? o.Similarity * o.GapFraction : 0);
                if (rng.NextDouble() >= p) continue;
                for (int y = Math.Max(0, by); y < Math.Min(H, by + gs); y++)
                    for (int x = Math.Max(0, bx); x < Math.Min(W, bx + gs); x++) g[y * W + x] = 0;
            }
        // clutter: isolated random edge pixels
        for (int i = 0; i < g.Length; i++)
            if (rng.NextDouble() < o.ClutterRate)
                g[i] = Gray(o.Edges, o.Edges == StressEdgeKind.Soft ? rng.Range(0.7, 1.0) : 1.0);
        return g;
    }

    static byte Gray(StressEdgeKind kind, double v)
    {
        if (kind == StressEdgeKind.Ternary) return v >= 0.75 ? (byte)255 : v >= 0.25 ? (byte)128 : (byte)0;
        return (byte)Math.Clamp((int)Math.Round(v * 255), 0, 255);
    }

    static IEnumerable<int> Neighbours(int i, int x, int y, int W, int H)
    {
        if (x > 0) yield return i - 1;
        if (x + 1 < W) yield return i + 1;
        if (y > 0) yield return i - W;
        if (y + 1 < H) yield return i + W;
    }

    // ---- coarse masks ----

    static List<StressMask> CoarseMasks(StressOptions o, Xoshiro256 rng, int[] labels, int W, int H, int n, List<(int A, int B)> pairs)
    {
        // merged pairs: touching pairs in random order, each object in at most one merged pair
        var partner = new int[n + 1];
        var order = pairs.ToList();
        for (int i = order.Count - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
        foreach (var (a, b) in order)
            if (partner[a] == 0 && partner[b] == 0 && rng.NextDouble() < o.MergeRate) { partner[a] = b; partner[b] = a; }
        var groups = Enumerable.Range(1, n).Where(k => partner[k] == 0 || partner[k] > k)
            .Select(k => partner[k] == 0 ? new[] { k } : new[] { k, partner[k] }).ToList();
        var masks = new List<StressMask>();
        foreach (var g in groups)
        {
            if (g.Length > 1)
            {
                var px = new byte[W * H];
                for (int i = 0; i < px.Length; i++) if (Array.IndexOf(g, labels[i]) >= 0) px[i] = 1;
                masks.Add(new StressMask(Jitter(px, W, H, o.Jitter, rng), g, StressMaskKind.Merged, rng.Range(0.05, 1)));
                continue;
            }
            int id = g[0];
            var obj = new byte[W * H];
            double sx = 0, sy = 0; int area = 0;
            for (int i = 0; i < obj.Length; i++)
                if (labels[i] == id) { obj[i] = 1; sx += i % W + 0.5; sy += i / W + 0.5; area++; }
            if (rng.NextDouble() < o.FragmentRate)
            {
                double cx = sx / area, cy = sy / area, ang = rng.Range(0, Math.PI), nx = Math.Cos(ang), ny = Math.Sin(ang);
                var h1 = new byte[W * H]; var h2 = new byte[W * H];
                for (int i = 0; i < obj.Length; i++)
                {
                    if (obj[i] == 0) continue;
                    double side = (i % W + 0.5 - cx) * nx + (i / W + 0.5 - cy) * ny;
                    if (side < 0) h1[i] = 1; else h2[i] = 1;
                }
                masks.Add(new StressMask(Jitter(h1, W, H, o.Jitter, rng), new[] { id }, StressMaskKind.Fragment, rng.Range(0.05, 1)));
                masks.Add(new StressMask(Jitter(h2, W, H, o.Jitter, rng), new[] { id }, StressMaskKind.Fragment, rng.Range(0.05, 1)));
                continue;
            }
            masks.Add(new StressMask(Jitter(obj, W, H, o.Jitter, rng), new[] { id }, StressMaskKind.Jittered, rng.Range(0.05, 1)));
        }
        return masks;
    }

    /// <summary>Erodes or dilates (at random) by <paramref name="steps"/> 4-neighbour steps; an erosion that would empty the mask is skipped.</summary>
    static byte[] Jitter(byte[] m, int W, int H, int steps, Xoshiro256 rng)
    {
        bool dilate = rng.NextDouble() < 0.5;
        var cur = m;
        for (int s = 0; s < steps; s++)
        {
            var next = new byte[cur.Length];
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    int i = y * W + x;
                    bool any = false, all = true;
                    foreach (int j in Neighbours(i, x, y, W, H)) { any |= cur[j] != 0; all &= cur[j] != 0; }
                    bool inBorder = x == 0 || y == 0 || x == W - 1 || y == H - 1;
                    next[i] = dilate ? (byte)(cur[i] != 0 || any ? 1 : 0) : (byte)(cur[i] != 0 && all && !inBorder ? 1 : 0);
                }
            if (!dilate && next.All(v => v == 0)) break;
            cur = next;
        }
        return cur;
    }
}
