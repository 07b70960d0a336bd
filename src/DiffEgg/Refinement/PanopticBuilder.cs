using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Refinement;

/// <summary>One segment of a panoptic pseudo-label (COCO panoptic <c>segments_info</c> entry).</summary>
public sealed record PseudoSegment(int Id, int CategoryId, long Area, int[] Bbox, int IsCrowd = 0);

/// <summary>A panoptic pseudo-label: per-pixel segment id (0 = void) and the segments.</summary>
public sealed class PanopticResult
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Row-major segment ids, 0 = void (ignore).</summary>
    public int[] SegmentIds { get; }
    public IReadOnlyList<PseudoSegment> Segments { get; }

    public PanopticResult(int width, int height, int[] segmentIds, IReadOnlyList<PseudoSegment> segments)
    {
        Width = width; Height = height; SegmentIds = segmentIds; Segments = segments;
    }

    /// <summary>The COCO panoptic annotation of this result for image <paramref name="imageId"/> whose PNG is <paramref name="fileName"/> (segments_info: id, category_id, area, bbox, iscrowd 0).</summary>
    public DiffEgg.Formats.PanopticAnnotation ToAnnotation(long imageId, string fileName) => new()
    {
        ImageId = imageId, FileName = fileName,
        Segments = Segments.Select(x => new DiffEgg.Formats.PanopticSegment
        {
            Id = x.Id, CategoryId = x.CategoryId, Area = x.Area, IsCrowd = x.IsCrowd, Bbox = x.Bbox.Select(b => (double)b).ToArray(),
        }).ToList(),
    };
}

/// <summary>WPS pseudo-labels (Alg 4 applied to a semantic mask): thing classes split into instances by edge CCL seeds + RIP, stuff classes kept whole.</summary>
public static class PanopticBuilder
{
    /// <summary>Below this (propagated value / seed maximum) a pixel counts as unreached and is assigned by geodesic nearest seed instead.</summary>
    public const float ReachedEpsilon = 1e-6f;

    /// <summary>Alg 4 for WPS: semantic class ids [H,W] (<paramref name="ignoreValue"/> = void) + edges → panoptic segments. <paramref name="isThing"/> maps every category id to thing (true) or stuff (false).</summary>
    /// <remarks>
    /// With <see cref="RefineOptions.Competition"/> (default) the thing instances are the pieces of each thing class cut by the edge regions
    /// of <see cref="EdgeRegions.Partition"/> (gap-tolerant cores competing in one RIP); small pieces are islands (<see cref="CleanIslands"/>).
    /// Without it: per-class CCL seeds of the non-edge pixels propagated by RIP inside their class (Alg 4 read literally).
    /// </remarks>
    public static PanopticResult Build(byte[] semantic, int width, int height, EdgeMap edges, IReadOnlyDictionary<int, bool> isThing, RefineOptions? options = null, int ignoreValue = 255)
    {
        var o = options ?? new RefineOptions();
        o.Validate();
        int W = width, H = height, HW = W * H;
        if (semantic.Length != HW) throw new ArgumentException($"semantic mask has {semantic.Length} pixels, expected {W}x{H}");
        var present = new bool[256];
        for (int i = 0; i < HW; i++)
        {
            int v = semantic[i];
            if (v == ignoreValue || present[v]) continue;
            if (!isThing.ContainsKey(v))
                throw new DiffEggException($"semantic value {v} at (y={i / W}, x={i % W}) is not a category id of the categories file (use {ignoreValue} for ignore)");
            present[v] = true;
        }
        var thingClasses = Enumerable.Range(0, 256).Where(c => present[c] && isThing[c]).ToList();
        var stuffClasses = Enumerable.Range(0, 256).Where(c => present[c] && !isThing[c]).ToList();
        var label = new int[HW]; // 1-based provisional segment index, 0 = none
        var segClass = new List<int> { -1 };

        if (thingClasses.Count > 0 && o.Competition) RegionThings(semantic, W, H, edges, thingClasses, label, segClass, o);
        else if (thingClasses.Count > 0)
        {
            TorchRuntime.EnsureLoaded();
            var (h, w) = RefineGrid.WorkSize(W, H, edges, o.MaxSide);
            using var scope = NewDisposeScope();
            var E = RefineGrid.EdgesAt(edges, h, w);
            var semFull = tensor(semantic, new long[] { 1, 1, H, W }).to_type(ScalarType.Float32);
            var semLow = (H == h && W == w ? semFull : nn.functional.interpolate(semFull, new long[] { h, w }, mode: InterpolationMode.Nearest)).reshape(h, w);
            var semLowArr = semLow.to_type(ScalarType.Int32).contiguous().data<int>().ToArray();
            var eArr = E.contiguous().data<float>().ToArray();

            // seeds: CCL of (class ∧ non-edge) per thing class, at working resolution
            var seedMasks = new List<float[]>();
            var seedClass = new List<int>();
            var windows = new List<(int, int, int, int)>();
            var fg = new bool[h * w];
            foreach (int k in thingClasses)
            {
                // RIP window of a seed: the box of the class region it lies in (the walk cannot leave it) plus the radius
                for (int i = 0; i < fg.Length; i++) fg[i] = semLowArr[i] == k;
                var regions = ConnectedComponents.Label(fg, w, h, 8, 1);
                var regionBox = RefineGrid.ComponentBoxes(regions);
                for (int i = 0; i < fg.Length; i++) fg[i] = semLowArr[i] == k && eArr[i] < o.EdgeThreshold;
                var cc = ConnectedComponents.Label(fg, w, h, o.Connectivity, o.MinArea);
                for (int c = 1; c <= cc.Count; c++)
                {
                    var m = new float[h * w];
                    int region = 0;
                    for (int i = 0; i < m.Length; i++) if (cc.Labels[i] == c) { m[i] = 1; region = regions.Labels[i]; }
                    seedMasks.Add(m);
                    seedClass.Add(k);
                    windows.Add(RefineGrid.Grow(new[] { regionBox[region] }, o.Radius));
                }
            }

            if (seedMasks.Count > 0)
            {
                // RIP of all seeds at once; the path affinity is 0 across a class change, so each seed stays within its class mask
                using var aff = PathAffinity.Build(E, o.Radius, o.Beta, semLow);
                var S = stack(seedMasks.Select(m => tensor(m, new long[] { h, w })).ToArray(), 0);
                var Pn = Rip.NormalizeToMax(Rip.Run(aff, S, E, o.Steps, o.Tolerance, windows));
                // every class pixel goes to the seed (of its class) with the highest propagated value, at full resolution
                var best = new float[HW];
                for (int s0 = 0; s0 < seedMasks.Count;)
                {
                    int k = seedClass[s0], s1 = s0;
                    while (s1 < seedMasks.Count && seedClass[s1] == k) s1++;
                    for (int c0 = s0; c0 < s1; c0 += 16)
                    {
                        using var inner = NewDisposeScope();
                        int cn = Math.Min(16, s1 - c0);
                        var up = Pn.narrow(0, c0, cn).unsqueeze(1);
                        if (h != H || w != W) up = nn.functional.interpolate(up, new long[] { H, W }, mode: InterpolationMode.Bilinear, align_corners: false);
                        var (mx, arg) = up.squeeze(1).max(0);
                        var mxA = mx.contiguous().data<float>().ToArray();
                        var argA = arg.to_type(ScalarType.Int32).contiguous().data<int>().ToArray();
                        for (int i = 0; i < HW; i++)
                        {
                            if (semantic[i] != k || mxA[i] <= ReachedEpsilon || mxA[i] <= best[i]) continue;
                            best[i] = mxA[i];
                            label[i] = segClass.Count + (c0 - s0) + argA[i];
                        }
                    }
                    for (int s = s0; s < s1; s++) segClass.Add(k);
                    s0 = s1;
                }
            }
            GeodesicFill(semantic, W, H, label, thingClasses, segClass, o.Connectivity);
        }

        // stuff: one segment per class
        var stuffIndex = new Dictionary<int, int>();
        foreach (int k in stuffClasses) { stuffIndex[k] = segClass.Count; segClass.Add(k); }
        for (int i = 0; i < HW; i++)
            if (semantic[i] != ignoreValue && stuffIndex.TryGetValue(semantic[i], out int si)) label[i] = si;

        return Finish(W, H, label, segClass);
    }

    /// <summary>
    /// Thing instances from edge regions: the working-grid partition is brought to the image size (nearest), each thing class is cut into
    /// its 8-connected pieces within one region, and pieces of at least <see cref="RefineOptions.MinArea"/> working pixels (scaled to the
    /// image) are instances; the smaller ones are islands for <see cref="CleanIslands"/>.
    /// </summary>
    static void RegionThings(byte[] semantic, int W, int H, EdgeMap edges, List<int> thingClasses, int[] label, List<int> segClass, RefineOptions o)
    {
        TorchRuntime.EnsureLoaded();
        var (h, w) = RefineGrid.WorkSize(W, H, edges, o.MaxSide);
        RegionPartition part;
        using (NewDisposeScope())
        {
            var E = RefineGrid.EdgesAt(edges, h, w);
            var clean = EdgeRegions.CleanEdges(E.contiguous().data<float>().ToArray(), w, h, o.EdgeThreshold, o.MinEdgeLength);
            part = EdgeRegions.Partition(E, clean, o.GapTolerance, o);
        }
        int HW = W * H;
        var region = new int[HW];
        for (int y = 0; y < H; y++)
        {
            int yy = Math.Min(h - 1, (int)((y + 0.5) * h / H));
            for (int x = 0; x < W; x++) region[y * W + x] = part.Labels[yy * w + Math.Min(w - 1, (int)((x + 0.5) * w / W))];
        }
        var isThingPx = new bool[256];
        foreach (int k in thingClasses) isThingPx[k] = true;
        // pieces: 8-connected pixels of one thing class and one region
        var piece = new int[HW];
        var pieceClass = new List<int> { -1 };
        var pieceArea = new List<int> { 0 };
        var stack = new Stack<int>();
        for (int s = 0; s < HW; s++)
        {
            if (piece[s] != 0 || !isThingPx[semantic[s]]) continue;
            int id = pieceClass.Count, k = semantic[s], r = region[s], area = 0;
            pieceClass.Add(k);
            piece[s] = id; stack.Push(s);
            while (stack.Count > 0)
            {
                int i = stack.Pop(), y = i / W, x = i % W;
                area++;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        if ((uint)yy >= (uint)H || (uint)xx >= (uint)W) continue;
                        int j = yy * W + xx;
                        if (piece[j] == 0 && semantic[j] == k && region[j] == r) { piece[j] = id; stack.Push(j); }
                    }
            }
            pieceArea.Add(area);
        }
        double scale = (double)HW / (h * w);
        int minPiece = (int)Math.Ceiling(o.MinArea * scale);
        var segOf = new int[pieceClass.Count];
        for (int p = 1; p < pieceClass.Count; p++)
            if (pieceArea[p] >= minPiece) { segOf[p] = segClass.Count; segClass.Add(pieceClass[p]); }
        for (int i = 0; i < HW; i++) if (piece[i] != 0) label[i] = segOf[piece[i]];
        CleanIslands(semantic, W, H, label, isThingPx, segClass, minPiece);
    }

    /// <summary>
    /// Island clean-up of thing pixels left without a segment (pieces too small to be an instance, noise of the semantic mask): a connected
    /// island of one class joins the segment of the same class it shares the longest border with; an island that borders no segment of its
    /// class becomes a segment of its own if it has at least <paramref name="minArea"/> pixels, and void (0) otherwise.
    /// </summary>
    public static void CleanIslands(byte[] semantic, int W, int H, int[] label, bool[] isThingPx, List<int> segClass, int minArea)
    {
        int HW = W * H;
        var island = new int[HW];
        var stack = new Stack<int>();
        var members = new List<int>();
        int next = 0;
        for (int s = 0; s < HW; s++)
        {
            if (label[s] != 0 || island[s] != 0 || !isThingPx[semantic[s]]) continue;
            int k = semantic[s];
            next++;
            members.Clear();
            var border = new Dictionary<int, int>();
            island[s] = next; stack.Push(s);
            while (stack.Count > 0)
            {
                int i = stack.Pop(), y = i / W, x = i % W;
                members.Add(i);
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        if ((uint)yy >= (uint)H || (uint)xx >= (uint)W) continue;
                        int j = yy * W + xx;
                        if (semantic[j] != k) continue;
                        if (label[j] == 0) { if (island[j] == 0) { island[j] = next; stack.Push(j); } }
                        else border[label[j]] = border.GetValueOrDefault(label[j]) + 1;
                    }
            }
            int target = border.Count > 0 ? border.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).First().Key
                : members.Count >= minArea ? segClass.Count : 0;
            if (target == segClass.Count) segClass.Add(k);
            foreach (int i in members) label[i] = target;
        }
    }

    /// <summary>Unreached thing pixels take the segment of the geodesically nearest reached pixel of the same class (BFS); what no seed reaches becomes one segment per connected piece.</summary>
    static void GeodesicFill(byte[] semantic, int W, int H, int[] label, List<int> thingClasses, List<int> segClass, int connectivity)
    {
        int HW = W * H;
        var isThingPx = new bool[256];
        foreach (int k in thingClasses) isThingPx[k] = true;
        var queue = new int[HW];
        int head = 0, tail = 0;
        for (int i = 0; i < HW; i++) if (label[i] != 0) queue[tail++] = i;
        ReadOnlySpan<(int dy, int dx)> nb = connectivity == 8
            ? new[] { (-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1) }
            : new[] { (-1, 0), (1, 0), (0, -1), (0, 1) };
        while (head < tail)
        {
            int i = queue[head++], y = i / W, x = i % W;
            foreach (var (dy, dx) in nb)
            {
                int yy = y + dy, xx = x + dx;
                if ((uint)yy >= (uint)H || (uint)xx >= (uint)W) continue;
                int j = yy * W + xx;
                if (label[j] != 0 || semantic[j] != semantic[i]) continue;
                label[j] = label[i];
                queue[tail++] = j;
            }
        }
        // thing pixels no seed reached (e.g. objects smaller than min-area): one segment per connected piece of the class
        var rest = new bool[HW];
        bool any = false;
        for (int i = 0; i < HW; i++) { rest[i] = label[i] == 0 && isThingPx[semantic[i]]; any |= rest[i]; }
        if (!any) return;
        var cc = ConnectedComponents.Label(rest, W, H, connectivity, 1);
        // a component can mix classes only if they touch: split by class
        var key = new Dictionary<(int, int), int>();
        for (int i = 0; i < HW; i++)
        {
            if (!rest[i]) continue;
            var kk = (cc.Labels[i], (int)semantic[i]);
            if (!key.TryGetValue(kk, out int idx)) { idx = segClass.Count; segClass.Add(semantic[i]); key[kk] = idx; }
            label[i] = idx;
        }
    }

    static PanopticResult Finish(int W, int H, int[] label, List<int> segClass)
    {
        int n = segClass.Count;
        var area = new long[n];
        var x0 = Enumerable.Repeat(int.MaxValue, n).ToArray(); var y0 = Enumerable.Repeat(int.MaxValue, n).ToArray();
        var x1 = new int[n]; var y1 = new int[n];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int l = label[y * W + x];
                if (l == 0) continue;
                area[l]++;
                if (x < x0[l]) x0[l] = x; if (x > x1[l]) x1[l] = x;
                if (y < y0[l]) y0[l] = y; if (y > y1[l]) y1[l] = y;
            }
        // renumber non-empty segments 1..m in creation order
        var newId = new int[n];
        var segs = new List<PseudoSegment>();
        for (int l = 1; l < n; l++)
        {
            if (area[l] == 0) continue;
            newId[l] = segs.Count + 1;
            segs.Add(new PseudoSegment(newId[l], segClass[l], area[l], new[] { x0[l], y0[l], x1[l] - x0[l] + 1, y1[l] - y0[l] + 1 }));
        }
        var ids = new int[W * H];
        for (int i = 0; i < ids.Length; i++) ids[i] = newId[label[i]];
        return new PanopticResult(W, H, ids, segs);
    }
}
