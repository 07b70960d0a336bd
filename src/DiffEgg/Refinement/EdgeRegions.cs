using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Refinement;

/// <summary>A partition of the working grid into edge-bounded regions: <see cref="Labels"/> 1..<see cref="Count"/> for every pixel (0 only when there is no region at all).</summary>
public sealed class RegionPartition
{
    public int Width { get; }
    public int Height { get; }
    public int[] Labels { get; }
    public int Count { get; }
    /// <summary>Areas[j] = pixels of region j (index 0 unused).</summary>
    public int[] Areas { get; }
    /// <summary>The cores the regions grew from (components of the pixels farther than the gap tolerance from every edge).</summary>
    public ComponentLabels Cores { get; }

    internal RegionPartition(int width, int height, int[] labels, int count, ComponentLabels cores)
    {
        Width = width; Height = height; Labels = labels; Count = count; Cores = cores;
        Areas = new int[count + 1];
        foreach (int l in labels) Areas[l]++;
    }
}

/// <summary>
/// Edge-bounded regions for Alg 4 that tolerate gaps and clutter: (1) edge clean-up — edge pixels in 8-connected pieces smaller than
/// a minimum length are clutter and removed; (2) cores — CCL (Alg 4 line 1) of the pixels farther than g from every edge pixel
/// (g = 0: the non-edge pixels, the paper's CCL; g &gt; 0 closes gaps up to about 2g pixels wide); (3) competition — all cores are
/// propagated together by the RIP random walk (T = D⁻¹A^β, Alg 4 lines 4-6) and every pixel goes to the core that reaches it most
/// strongly; pixels no core reaches (edge pixels among them) take the region of the nearest reached pixel.
/// </summary>
public static class EdgeRegions
{
    /// <summary>A pixel is claimed by the strongest core only where that core's propagated value is at least this fraction of the core's own maximum (inside the core's own closed region); what leaks through a gap or a weak edge claims nothing, and unclaimed pixels are flooded (<see cref="Flood"/>).</summary>
    public const float ClaimFraction = 0.5f;

    /// <summary>Edge pixels (value ≥ threshold) after removing 8-connected edge pieces of fewer than <paramref name="minLength"/> pixels (0 or 1 = keep all).</summary>
    public static bool[] CleanEdges(ReadOnlySpan<float> edges, int w, int h, float threshold, int minLength)
    {
        var e = new bool[w * h];
        for (int i = 0; i < e.Length; i++) e[i] = edges[i] >= threshold;
        if (minLength <= 1) return e;
        var cc = ConnectedComponents.Label(e, w, h, 8, minLength);
        for (int i = 0; i < e.Length; i++) e[i] = cc.Labels[i] != 0;
        return e;
    }

    /// <summary>Euclidean distance of every pixel to the nearest true pixel of <paramref name="edge"/> (exact, separable Felzenszwalb–Huttenlocher); +∞ without edges.</summary>
    public static float[] DistanceToEdges(bool[] edge, int w, int h)
    {
        const double Inf = 1e12; // larger than any squared distance on a working grid, small enough to keep q² in double precision
        var f = new double[w * h];
        for (int i = 0; i < f.Length; i++) f[i] = edge[i] ? 0 : Inf;
        int n = Math.Max(w, h);
        var buf = new double[n];
        var outBuf = new double[n];
        var v = new int[n];
        var z = new double[n + 1];
        // squared distances: columns, then rows
        for (int x = 0; x < w; x++)
        {
            for (int y = 0; y < h; y++) buf[y] = f[y * w + x];
            Dt1(buf, h, outBuf, v, z);
            for (int y = 0; y < h; y++) f[y * w + x] = outBuf[y];
        }
        var result = new float[w * h];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++) buf[x] = f[y * w + x];
            Dt1(buf, w, outBuf, v, z);
            for (int x = 0; x < w; x++) result[y * w + x] = outBuf[x] >= Inf / 2 ? float.PositiveInfinity : (float)Math.Sqrt(outBuf[x]);
        }
        return result;
    }

    /// <summary>1-D squared distance transform of sampled function f (lower envelope of parabolas).</summary>
    static void Dt1(double[] f, int n, double[] d, int[] v, double[] z)
    {
        int k = 0;
        v[0] = 0; z[0] = double.NegativeInfinity; z[1] = double.PositiveInfinity;
        for (int q = 1; q < n; q++)
        {
            double s = ((f[q] + (double)q * q) - (f[v[k]] + (double)v[k] * v[k])) / (2.0 * q - 2.0 * v[k]);
            while (s <= z[k])
            {
                k--;
                s = ((f[q] + (double)q * q) - (f[v[k]] + (double)v[k] * v[k])) / (2.0 * q - 2.0 * v[k]);
            }
            k++;
            v[k] = q; z[k] = s; z[k + 1] = double.PositiveInfinity;
        }
        k = 0;
        for (int q = 0; q < n; q++)
        {
            while (z[k + 1] < q) k++;
            d[q] = (double)(q - v[k]) * (q - v[k]) + f[v[k]];
        }
    }

    /// <summary>
    /// Alg 4 lines 1 and 4-6 with competition: cores (<see cref="PersistentCores"/>, or with <paramref name="persistence"/> 0 the paper's
    /// CCL of the non-edge pixels) are propagated together by RIP (T = D⁻¹A^β on <paramref name="edges"/> without the clutter) and each pixel
    /// is claimed by the core with the highest normalised value if that is ≥ <see cref="ClaimFraction"/>; the rest is flooded from the claimed
    /// pixels (<see cref="Flood"/>), and neighbouring regions whose shared boundary is not an edge are merged.
    /// </summary>
    public static RegionPartition Partition(Tensor edges, bool[] cleanEdges, int persistence, RefineOptions o)
    {
        int h = (int)edges.shape[0], w = (int)edges.shape[1];
        ComponentLabels cores;
        var dist = DistanceToEdges(cleanEdges, w, h);
        if (persistence <= 0)
        {
            var nonEdge = new bool[w * h];
            for (int i = 0; i < nonEdge.Length; i++) nonEdge[i] = !cleanEdges[i];
            cores = ConnectedComponents.Label(nonEdge, w, h, o.Connectivity, o.MinArea);
        }
        else cores = PersistentCores(dist, cleanEdges, w, h, persistence, Math.Max(1, o.MinArea / 4));
        int C = cores.Count;
        var labels = new int[w * h];
        if (C == 0) return new RegionPartition(w, h, labels, 0, cores);
        if (C == 1)
        {
            Array.Fill(labels, 1);
            return new RegionPartition(w, h, labels, 1, cores);
        }
        using (NewDisposeScope())
        {
            var seeds = new float[C * w * h];
            for (int i = 0; i < w * h; i++) if (cores.Labels[i] > 0) seeds[(cores.Labels[i] - 1) * w * h + i] = 1f;
            // a core competes within its box grown by two walk radii (what lies beyond is flooded)
            var boxes = RefineGrid.ComponentBoxes(cores);
            var windows = new List<(int, int, int, int)>(C);
            for (int c = 1; c <= C; c++) windows.Add(RefineGrid.Grow(new[] { boxes[c] }, 2 * o.Radius + 2));
            // clean edges only: clutter removed from the map drives no affinity either
            var eArr = edges.contiguous().data<float>().ToArray();
            for (int i = 0; i < eArr.Length; i++) if (eArr[i] >= o.EdgeThreshold && !cleanEdges[i]) eArr[i] = 0;
            var eClean = tensor(eArr, new long[] { h, w });
            using var aff = PathAffinity.Build(eClean, o.Radius, o.Beta);
            var P = Rip.Propagate(aff, tensor(seeds, new long[] { C, h, w }), o.Steps, o.Tolerance, windows);
            // each core's map relative to its own maximum: a trickle through a weak (soft) edge is tiny against it
            var (mx, arg) = Rip.NormalizeToMax(P).max(0);
            var mxA = mx.contiguous().data<float>().ToArray();
            var argA = arg.to_type(ScalarType.Int32).contiguous().data<int>().ToArray();
            for (int i = 0; i < labels.Length; i++)
                if (!cleanEdges[i] && mxA[i] >= ClaimFraction) labels[i] = argA[i] + 1;
        }
        Flood(labels, dist, w, h);
        int count = persistence > 0 ? MergeUnsupported(labels, cleanEdges, w, h, C) : C;
        return new RegionPartition(w, h, labels, count, cores);
    }

    /// <summary>
    /// Merges neighbouring regions whose shared boundary is not an edge: fewer than half of the boundary's pixel pairs have an edge pixel
    /// within one pixel. Cores split one region where its shape narrows; only edges, even with gaps, keep regions apart. Relabels 1..count.
    /// </summary>
    static int MergeUnsupported(int[] labels, bool[] edges, int w, int h, int count)
    {
        var near = EdgeAgreement.Near(edges, w, h);
        var pairs = new Dictionary<(int, int), (int Total, int Supported)>();
        void Count(int p, int q)
        {
            int a = labels[p], b = labels[q];
            if (a == b || a == 0 || b == 0) return;
            var key = a < b ? (a, b) : (b, a);
            pairs.TryGetValue(key, out var c);
            pairs[key] = (c.Total + 1, c.Supported + (near[p] || near[q] ? 1 : 0));
        }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                if (x + 1 < w) Count(i, i + 1);
                if (y + 1 < h) Count(i, i + w);
            }
        var parent = Enumerable.Range(0, count + 1).ToArray();
        int Find(int a) { while (parent[a] != a) a = parent[a] = parent[parent[a]]; return a; }
        foreach (var ((a, b), c) in pairs.OrderBy(kv => kv.Key))
        {
            if (2 * c.Supported < c.Total) parent[Find(a)] = Find(b);
        }
        var map = new int[count + 1];
        int next = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            int r = Find(labels[i]);
            if (r == 0) continue;
            if (map[r] == 0) map[r] = ++next;
            labels[i] = map[r];
        }
        return next;
    }

    /// <summary>
    /// Gap-tolerant CCL: the cores of the non-edge area are the maxima of the distance to the edges that stand at least
    /// <paramref name="persistence"/> above the saddle where they meet a higher maximum (h-maxima of the distance transform, by a merge
    /// tree over the pixels in decreasing distance). Two objects joined through a gap in their shared edge meet at a saddle about half the
    /// gap wide, far below either interior, so they keep separate cores; the bumps of one region's own shape do not. A core is the
    /// component above the saddle level where it met its neighbour (at least <paramref name="minArea"/> pixels).
    /// </summary>
    public static ComponentLabels PersistentCores(float[] dist, bool[] edges, int w, int h, double persistence, int minArea)
    {
        int hw = w * h;
        var order = Enumerable.Range(0, hw).Where(i => !edges[i]).OrderByDescending(i => dist[i]).ThenBy(i => i).ToArray();
        var parent = new int[hw];
        Array.Fill(parent, -1);
        var peak = new float[hw];
        var members = new List<int>?[hw];
        var marked = new bool[hw];
        var markerOf = new int[hw];
        int markers = 0;
        int Find(int a) { while (parent[a] != a) a = parent[a] = parent[parent[a]]; return a; }
        bool Persistent(int r, float level) => marked[r] || (peak[r] - level >= persistence && members[r]!.Count >= minArea);
        void Mark(int r)
        {
            if (marked[r]) return;
            marked[r] = true;
            markers++;
            foreach (int p in members[r]!) markerOf[p] = markers;
        }
        foreach (int p in order)
        {
            parent[p] = p; peak[p] = dist[p]; members[p] = new List<int> { p };
            int y = p / w, x = p % w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                {
                    int yy = y + dy, xx = x + dx;
                    if ((dy == 0 && dx == 0) || (uint)yy >= (uint)h || (uint)xx >= (uint)w) continue;
                    int q = yy * w + xx;
                    if (parent[q] < 0) continue;
                    int a = Find(p), b = Find(q);
                    if (a == b) continue;
                    float level = dist[p];
                    if (Persistent(a, level) && Persistent(b, level)) { Mark(a); Mark(b); }
                    // union: the larger member list absorbs the smaller
                    if (members[a]!.Count < members[b]!.Count) (a, b) = (b, a);
                    parent[b] = a;
                    members[a]!.AddRange(members[b]!);
                    members[b] = null;
                    peak[a] = Math.Max(peak[a], peak[b]);
                    marked[a] |= marked[b];
                }
        }
        // roots that never met a persistent neighbour are one core each
        foreach (int p in order)
            if (parent[p] == p && !marked[p] && members[p]!.Count >= minArea) Mark(p);
        var fg = new bool[hw];
        for (int i = 0; i < hw; i++) fg[i] = markerOf[i] > 0;
        // renumber as a ComponentLabels (markers are connected sets; CCL keeps them apart only where they do not touch)
        var labels = new int[hw];
        var areas = new List<int> { 0 };
        var map = new int[markers + 1];
        for (int i = 0; i < hw; i++)
        {
            int m = markerOf[i];
            if (m == 0) continue;
            if (map[m] == 0) { map[m] = areas.Count; areas.Add(0); }
            labels[i] = map[m];
            areas[map[m]]++;
        }
        return new ComponentLabels(w, h, labels, areas.Count - 1, areas.ToArray());
    }

    /// <summary>
    /// Seeded watershed on the distance to the edges: unlabelled pixels (0) are taken in order of decreasing distance (ties: raster order),
    /// each from an 8-neighbour already labelled, so fronts from two cores meet at the narrowest point of a gap, and edge pixels (distance 0)
    /// are shared out last. Pixels no labelled pixel connects to stay 0.
    /// </summary>
    public static void Flood(int[] labels, float[] dist, int w, int h)
    {
        var queue = new PriorityQueue<int, (float, int)>();
        var queued = new bool[labels.Length];
        void Push(int j) { if (labels[j] == 0 && !queued[j]) { queued[j] = true; queue.Enqueue(j, (-dist[j], j)); } }
        void PushNeighbours(int i)
        {
            int y = i / w, x = i % w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                {
                    int yy = y + dy, xx = x + dx;
                    if ((uint)yy < (uint)h && (uint)xx < (uint)w) Push(yy * w + xx);
                }
        }
        for (int i = 0; i < labels.Length; i++) if (labels[i] != 0) PushNeighbours(i);
        while (queue.TryDequeue(out int i, out _))
        {
            int y = i / w, x = i % w, best = 0;
            float bestD = -1;
            // the label of the labelled neighbour farthest from the edges (deepest in its region)
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                {
                    int yy = y + dy, xx = x + dx;
                    if ((uint)yy >= (uint)h || (uint)xx >= (uint)w) continue;
                    int j = yy * w + xx;
                    if (labels[j] != 0 && dist[j] > bestD) { bestD = dist[j]; best = labels[j]; }
                }
            labels[i] = best;
            PushNeighbours(i);
        }
    }
}

/// <summary>
/// Edge agreement of a mask (the arbiter of robust Alg 4): Q = (|contour ∩ edges| + ½|contour ∩ (edges±1 \ edges)|) / (|contour| + |edges deep inside|)
/// — the share of the mask's contour that lies on an edge (half credit one pixel off), discounted by edge pixels deep inside the mask
/// (a merged mask has its neighbours' shared boundary inside).
/// 1 = every contour pixel on an edge and no edge inside; a mask cut across an object (no edge along the cut) or spanning two objects scores lower.
/// </summary>
public static class EdgeAgreement
{
    /// <summary>Q of a binary mask (row-major, true = inside) against edge pixels, both on the w×h grid; the image border is not contour. An empty mask scores 0.</summary>
    public static double Score(ReadOnlySpan<bool> mask, ReadOnlySpan<bool> edges, ReadOnlySpan<bool> edgesNear, int w, int h)
    {
        long contour = 0, matched = 0, inside = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                if (!mask[i]) continue;
                bool isContour = (x > 0 && !mask[i - 1]) || (x + 1 < w && !mask[i + 1]) || (y > 0 && !mask[i - w]) || (y + 1 < h && !mask[i + w]);
                if (isContour)
                {
                    contour += 2;
                    if (edges[i]) matched += 2;
                    else if (edgesNear[i]) matched++;
                }
                else if (edges[i] && Deep(mask, x, y, w, h)) inside += 2;
            }
        return contour + inside == 0 ? 0 : (double)matched / (contour + inside);
    }

    /// <summary>True when every pixel within Chebyshev distance 2 (inside the image) is in the mask.</summary>
    static bool Deep(ReadOnlySpan<bool> mask, int x, int y, int w, int h)
    {
        for (int dy = -2; dy <= 2; dy++)
            for (int dx = -2; dx <= 2; dx++)
            {
                int yy = y + dy, xx = x + dx;
                if ((uint)yy >= (uint)h || (uint)xx >= (uint)w) continue;
                if (!mask[yy * w + xx]) return false;
            }
        return true;
    }

    /// <summary>Edge strength within one pixel (3×3 maximum of E) with the clutter removed (values ≥ <paramref name="threshold"/> that are not clean edge pixels count 0): weak boundaries below the threshold keep their value.</summary>
    public static float[] NearValues(float[] e, bool[] clean, float threshold, int w, int h)
    {
        var v = new float[e.Length];
        for (int i = 0; i < e.Length; i++) v[i] = e[i] >= threshold && !clean[i] ? 0f : e[i];
        var r = new float[e.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float m = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        if ((uint)yy < (uint)h && (uint)xx < (uint)w) m = Math.Max(m, v[yy * w + xx]);
                    }
                r[y * w + x] = m;
            }
        return r;
    }

    /// <summary>Edge pixels dilated by one pixel (3×3): the tolerance of the contour test.</summary>
    public static bool[] Near(bool[] edges, int w, int h)
    {
        var n = new bool[edges.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                if (!edges[y * w + x]) continue;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        if ((uint)yy < (uint)h && (uint)xx < (uint)w) n[yy * w + xx] = true;
                    }
            }
        return n;
    }
}

/// <summary>
/// Change-level arbiter of robust Alg 4: a proposed mask is applied to the original piece by piece. Thin changes (within one pixel of the
/// original contour: alignment) are taken as they are. A thick piece the proposal removes is removed only if the new contour it leaves
/// (its seam with the rest of the mask) lies on edges (≥ half of it); a thick piece it adds is added only if nothing separates it from the
/// mask — the mean edge strength within one pixel of its seam (away from the proposal's outline, clutter removed, weak values below the
/// edge threshold included) is under 0.1: a cut through one object has no edge, a boundary of two objects keeps some edge even with gaps
/// or low contrast — and its outer contour is enclosed by edges (≥ 70 % near an edge). Where the edge map has a gap, neither side has evidence and the original stays.
/// </summary>
public static class EdgeArbiter
{
    /// <summary>The original with the edge-supported changes of <paramref name="proposed"/> applied (both row-major w×h, true = inside); <paramref name="near"/> = edge pixels dilated by one.</summary>
    public static bool[] Apply(bool[] original, bool[] proposed, bool[] near, float[] weak, int w, int h, double support = 0.5, double enclosure = 0.7, double joinSeam = 0.1, bool allowRemovals = true)
    {
        int hw = w * h;
        var result = (bool[])original.Clone();
        var plus = new bool[hw];
        var minus = new bool[hw];
        for (int p = 0; p < hw; p++) { plus[p] = proposed[p] && !original[p]; minus[p] = original[p] && !proposed[p]; }
        var thin = new bool[hw];
        foreach (var (blob, isThin) in Pieces(plus, w, h))
        {
            if (isThin) { foreach (int p in blob) result[p] = true; continue; }
            // the seam away from the proposal's own contour (where it meets the outline every seam touches an edge)
            double seam = Strength(blob, p => original[p], weak, w, h, out int seamCount, q => Deep(proposed, q, w, h));
            double outer = Support(blob, p => !original[p] && !proposed[p], near, w, h, out _);
            if ((seamCount == 0 || seam < joinSeam) && outer >= enclosure)
                foreach (int p in blob) result[p] = true;
        }
        if (!allowRemovals) return result;
        foreach (var (blob, isThin) in Pieces(minus, w, h))
        {
            if (isThin) { foreach (int p in blob) result[p] = false; continue; }
            double seam = Support(blob, p => original[p] && proposed[p], near, w, h, out int seamCount);
            if (seamCount == 0 || seam >= support)
                foreach (int p in blob) result[p] = false;
        }
        return result;
    }

    /// <summary>Pieces of a change set: each 8-connected component of its thick part (what survives a 3×3 opening) grown by one pixel within the set, then the thin remainder's components.</summary>
    static IEnumerable<(List<int> Pixels, bool Thin)> Pieces(bool[] set, int w, int h)
    {
        int hw = w * h;
        var thick = Open3(set, w, h);
        // thick pixels plus their 8-neighbours in the set belong to the thick pieces
        var grown = (bool[])thick.Clone();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                if (!set[i] || thick[i]) continue;
                for (int dy = -1; dy <= 1 && !grown[i]; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        if ((uint)yy < (uint)h && (uint)xx < (uint)w && thick[yy * w + xx]) { grown[i] = true; break; }
                    }
            }
        var cc = ConnectedComponents.Label(grown, w, h, 8, 1);
        var lists = new List<int>[cc.Count + 1];
        for (int p = 0; p < hw; p++) if (cc.Labels[p] > 0) (lists[cc.Labels[p]] ??= new List<int>()).Add(p);
        for (int c = 1; c <= cc.Count; c++) yield return (lists[c], false);
        var thinList = new List<int>();
        for (int p = 0; p < hw; p++) if (set[p] && !grown[p]) thinList.Add(p);
        if (thinList.Count > 0) yield return (thinList, true);
    }

    /// <summary>3×3 opening (erosion then dilation; outside the grid counts as outside the set).</summary>
    static bool[] Open3(bool[] set, int w, int h)
    {
        var er = new bool[set.Length];
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++)
            {
                bool all = true;
                for (int dy = -1; dy <= 1 && all; dy++)
                    for (int dx = -1; dx <= 1; dx++) if (!set[(y + dy) * w + x + dx]) { all = false; break; }
                er[y * w + x] = all;
            }
        var op = new bool[set.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                if (!er[y * w + x]) continue;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        if ((uint)yy < (uint)h && (uint)xx < (uint)w) op[yy * w + xx] = true;
                    }
            }
        return op;
    }

    /// <summary>Fraction of the piece's pixels that have a 4-neighbour satisfying <paramref name="across"/> and lie near an edge; <paramref name="count"/> = how many have such a neighbour.</summary>
    static double Support(List<int> piece, Func<int, bool> across, bool[] near, int w, int h, out int count, Func<int, bool>? only = null)
    {
        int n = 0, on = 0;
        foreach (int p in piece)
        {
            if (only is not null && !only(p)) continue;
            int y = p / w, x = p % w;
            bool border = (x > 0 && across(p - 1)) || (x + 1 < w && across(p + 1)) || (y > 0 && across(p - w)) || (y + 1 < h && across(p + w));
            if (!border) continue;
            n++;
            if (near[p]) on++;
        }
        count = n;
        return n == 0 ? 0 : (double)on / n;
    }

    /// <summary>Mean of <paramref name="weak"/> over the piece's pixels that have a 4-neighbour satisfying <paramref name="across"/> (and <paramref name="only"/>); <paramref name="count"/> = how many.</summary>
    static double Strength(List<int> piece, Func<int, bool> across, float[] weak, int w, int h, out int count, Func<int, bool> only)
    {
        int n = 0;
        double sum = 0;
        foreach (int p in piece)
        {
            if (!only(p)) continue;
            int y = p / w, x = p % w;
            if (!((x > 0 && across(p - 1)) || (x + 1 < w && across(p + 1)) || (y > 0 && across(p - w)) || (y + 1 < h && across(p + w)))) continue;
            n++;
            sum += weak[p];
        }
        count = n;
        return n == 0 ? 0 : sum / n;
    }

    /// <summary>True when every pixel within Chebyshev distance 2 of p (inside the grid) is in the set.</summary>
    static bool Deep(bool[] set, int p, int w, int h)
    {
        int y = p / w, x = p % w;
        for (int dy = -2; dy <= 2; dy++)
            for (int dx = -2; dx <= 2; dx++)
            {
                int yy = y + dy, xx = x + dx;
                if ((uint)yy < (uint)h && (uint)xx < (uint)w && !set[yy * w + xx]) return false;
            }
        return true;
    }
}
