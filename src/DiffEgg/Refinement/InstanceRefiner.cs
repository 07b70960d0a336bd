using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Refinement;

/// <summary>A binary instance mask at image resolution (row-major, 1 = inside) with its category and score.</summary>
public sealed class InstanceMask
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }
    public int CategoryId { get; set; }
    public double Score { get; set; }

    public InstanceMask(int width, int height, byte[] pixels, int categoryId = 1, double score = 1.0)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"mask size {width}x{height} must be positive");
        if (pixels.Length != width * height) throw new ArgumentException($"mask has {pixels.Length} pixels, expected {width}x{height} = {width * height}");
        Width = width; Height = height; Pixels = pixels; CategoryId = categoryId; Score = score;
    }

    /// <summary>Number of pixels inside the mask.</summary>
    public long Area
    {
        get { long a = 0; foreach (var p in Pixels) if (p != 0) a++; return a; }
    }

    /// <summary>Intersection over union with another mask of the same size.</summary>
    public double IoU(InstanceMask other)
    {
        if (other.Width != Width || other.Height != Height) throw new ArgumentException($"mask sizes differ: {Width}x{Height} vs {other.Width}x{other.Height}");
        long inter = 0, uni = 0;
        for (int i = 0; i < Pixels.Length; i++)
        {
            bool a = Pixels[i] != 0, b = other.Pixels[i] != 0;
            if (a && b) inter++;
            if (a || b) uni++;
        }
        return uni == 0 ? 0 : (double)inter / uni;
    }
}

/// <summary>Parameters of refinement with edges (Alg 4). Defaults are the documented ones (docs/method.md).</summary>
public sealed record RefineOptions
{
    /// <summary>RIP affinity radius r in working-resolution pixels.</summary>
    public int Radius { get; init; } = 5;
    /// <summary>RIP affinity exponent β (A = a^β).</summary>
    public double Beta { get; init; } = 10;
    /// <summary>Number t of random-walk steps (M* = Tᵗ M).</summary>
    public int Steps { get; init; } = 256;
    /// <summary>RIP early stop: a map stops once 16 steps change no value by more than this × its maximum (0 = always run all t steps).</summary>
    public float Tolerance { get; init; } = 1e-4f;
    /// <summary>Edge value at or above which a pixel is an edge for CCL (non-edge: value &lt; threshold).</summary>
    public float EdgeThreshold { get; init; } = 0.5f;
    /// <summary>CCL connectivity, 4 or 8.</summary>
    public int Connectivity { get; init; } = 8;
    /// <summary>Minimum component area (working-resolution pixels) for a component to count as "sizeable" (split) or as a seed (panoptic).</summary>
    public int MinArea { get; init; } = 16;
    /// <summary>A mask that covers at least this fraction of each of ≥ 2 sizeable components is split.</summary>
    public float SplitCoverage { get; init; } = 0.5f;
    /// <summary>A component takes part in a split only if it holds at least this fraction of the mask's area (small texture cells do not split a mask).</summary>
    public float SplitMinFraction { get; init; } = 0.15f;
    /// <summary>A refined mask that keeps less than this fraction of its seed is treated as a collapse (the walk was trapped by texture edges); the seed is kept instead (0 = off).</summary>
    public double MinKeep { get; init; } = 0.8;
    /// <summary>Score factor of the original mask kept beside its split parts.</summary>
    public double OriginalScoreFactor { get; init; } = 0.5;
    /// <summary>Threshold on the propagated map divided by its maximum.</summary>
    public float PropagationThreshold { get; init; } = 0.5f;
    /// <summary>Masks of the same category with IoU above this are merged (union, higher score).</summary>
    public double MergeIoU { get; init; } = 0.5;
    /// <summary>Long side of the working resolution (capped further by the edge map's and the image's size).</summary>
    public int MaxSide { get; init; } = 128;
    /// <summary>A refined mask larger than this many times its seed is treated as a leak through an open contour; the seed is kept instead.</summary>
    public double MaxGrowth { get; init; } = 4;
    /// <summary>Morphological closing radius (working pixels, square) applied to each refined mask: bridges the thin edge responses of object texture (0 = off).</summary>
    public int CloseRadius { get; init; } = 1;
    /// <summary>Fill the holes (background pixels not 4-connected to the border) of each refined mask.</summary>
    public bool FillHoles { get; init; } = true;

    /// <summary>Checks every field; throws <see cref="ArgumentException"/> naming the field.</summary>
    public void Validate()
    {
        if (Radius < 1 || Radius > 32) throw new ArgumentException($"radius must be in 1..32, got {Radius}");
        if (!(Beta > 0) || !double.IsFinite(Beta)) throw new ArgumentException($"beta must be positive, got {Beta}");
        if (Steps < 0) throw new ArgumentException($"steps must be ≥ 0, got {Steps}");
        if (!(Tolerance >= 0 && Tolerance < 1)) throw new ArgumentException($"tolerance must be in [0,1), got {Tolerance}");
        if (!(EdgeThreshold > 0 && EdgeThreshold <= 1)) throw new ArgumentException($"edge threshold must be in (0,1], got {EdgeThreshold}");
        if (Connectivity != 4 && Connectivity != 8) throw new ArgumentException($"connectivity must be 4 or 8, got {Connectivity}");
        if (MinArea < 1) throw new ArgumentException($"min-area must be ≥ 1, got {MinArea}");
        if (!(SplitCoverage > 0 && SplitCoverage <= 1)) throw new ArgumentException($"split coverage must be in (0,1], got {SplitCoverage}");
        if (!(PropagationThreshold > 0 && PropagationThreshold < 1)) throw new ArgumentException($"propagation threshold must be in (0,1), got {PropagationThreshold}");
        if (!(MergeIoU > 0 && MergeIoU <= 1)) throw new ArgumentException($"merge-iou must be in (0,1], got {MergeIoU}");
        if (MaxSide < 8) throw new ArgumentException($"max-side must be ≥ 8, got {MaxSide}");
        if (!(MaxGrowth >= 1)) throw new ArgumentException($"max-growth must be ≥ 1, got {MaxGrowth}");
        if (!(SplitMinFraction >= 0 && SplitMinFraction < 1)) throw new ArgumentException($"split min fraction must be in [0,1), got {SplitMinFraction}");
        if (!(MinKeep >= 0 && MinKeep <= 1)) throw new ArgumentException($"min-keep must be in [0,1], got {MinKeep}");
        if (CloseRadius < 0 || CloseRadius > 16) throw new ArgumentException($"close radius must be in 0..16, got {CloseRadius}");
    }
}

/// <summary>Resampling between image, edge-map and working resolutions for Alg 4.</summary>
public static class RefineGrid
{
    /// <summary>Working size: the image's aspect, long side = min(maxSide, edge map's long side, image's long side).</summary>
    public static (int H, int W) WorkSize(int imageW, int imageH, EdgeMap edges, int maxSide)
    {
        int longImg = Math.Max(imageW, imageH);
        int target = Math.Min(maxSide, Math.Min(longImg, Math.Max(edges.Width, edges.Height)));
        double s = (double)target / longImg;
        return (Math.Max(1, (int)Math.Round(imageH * s)), Math.Max(1, (int)Math.Round(imageW * s)));
    }

    /// <summary>Edge map resampled to [h,w]: max-pooling when shrinking (thin edges survive), bilinear when enlarging.</summary>
    public static Tensor EdgesAt(EdgeMap edges, int h, int w)
    {
        using var scope = NewDisposeScope();
        var e = tensor(edges.Values, new long[] { 1, 1, edges.Height, edges.Width });
        if (edges.Height < h || edges.Width < w)
            e = nn.functional.interpolate(e, new long[] { Math.Max(h, edges.Height), Math.Max(w, edges.Width) }, mode: InterpolationMode.Bilinear, align_corners: false);
        if (e.shape[2] != h || e.shape[3] != w)
            e = nn.functional.adaptive_max_pool2d(e, new long[] { h, w });
        return e.reshape(h, w).clamp(0, 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Binary masks (N × H×W bytes) as the fraction of each working pixel they cover, [N,h,w].</summary>
    public static Tensor MasksAt(IReadOnlyList<byte[]> masks, int imageH, int imageW, int h, int w)
    {
        using var scope = NewDisposeScope();
        int hw = imageH * imageW;
        var all = new byte[masks.Count * hw];
        for (int n = 0; n < masks.Count; n++)
        {
            var m = masks[n];
            for (int i = 0; i < hw; i++) all[n * hw + i] = m[i] != 0 ? (byte)1 : (byte)0;
        }
        var t = tensor(all, new long[] { masks.Count, 1, imageH, imageW }).to_type(ScalarType.Float32);
        if (imageH != h || imageW != w) t = nn.functional.adaptive_avg_pool2d(t, new long[] { h, w });
        return t.squeeze(1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Soft maps [N,h,w] upsampled bilinearly to the image size and thresholded (≥ <paramref name="threshold"/>) into N byte masks.</summary>
    public static byte[][] UpsampleThreshold(Tensor maps, int imageH, int imageW, float threshold)
    {
        int n = (int)maps.shape[0], hw = imageH * imageW;
        var result = new byte[n][];
        const int chunk = 16; // bounds the float buffer to 16 × H × W
        for (int c0 = 0; c0 < n; c0 += chunk)
        {
            using var scope = NewDisposeScope();
            int cn = Math.Min(chunk, n - c0);
            var up = maps.narrow(0, c0, cn).unsqueeze(1);
            if (up.shape[2] != imageH || up.shape[3] != imageW)
                up = nn.functional.interpolate(up, new long[] { imageH, imageW }, mode: InterpolationMode.Bilinear, align_corners: false);
            var all = up.ge(threshold).to_type(ScalarType.Byte).contiguous().data<byte>().ToArray();
            for (int i = 0; i < cn; i++) result[c0 + i] = all.AsSpan(i * hw, hw).ToArray();
        }
        return result;
    }

    /// <summary>Bounding boxes (Y0, Y1, X0, X1, end-exclusive) of components 1..Count (index 0 unused, empty).</summary>
    public static (int Y0, int Y1, int X0, int X1)[] ComponentBoxes(ComponentLabels cc)
    {
        var b = new (int Y0, int Y1, int X0, int X1)[cc.Count + 1];
        for (int c = 0; c <= cc.Count; c++) b[c] = (int.MaxValue, int.MinValue, int.MaxValue, int.MinValue);
        for (int y = 0; y < cc.Height; y++)
            for (int x = 0; x < cc.Width; x++)
            {
                int l = cc.Labels[y * cc.Width + x];
                if (l == 0) continue;
                var (y0, y1, x0, x1) = b[l];
                b[l] = (Math.Min(y0, y), Math.Max(y1, y + 1), Math.Min(x0, x), Math.Max(x1, x + 1));
            }
        return b;
    }

    /// <summary>Union of boxes (empty boxes ignored) grown by <paramref name="margin"/> on every side.</summary>
    public static (int Y0, int Y1, int X0, int X1) Grow(IEnumerable<(int Y0, int Y1, int X0, int X1)> boxes, int margin)
    {
        int y0 = int.MaxValue, y1 = int.MinValue, x0 = int.MaxValue, x1 = int.MinValue;
        foreach (var b in boxes)
        {
            if (b.Y1 <= b.Y0 || b.X1 <= b.X0) continue;
            y0 = Math.Min(y0, b.Y0); y1 = Math.Max(y1, b.Y1); x0 = Math.Min(x0, b.X0); x1 = Math.Max(x1, b.X1);
        }
        return y0 > y1 ? (0, 0, 0, 0) : (y0 - margin, y1 + margin, x0 - margin, x1 + margin);
    }

    /// <summary>Bounding box (end-exclusive) of the positive pixels of a row-major [h,w] map.</summary>
    public static (int Y0, int Y1, int X0, int X1) Box(ReadOnlySpan<float> map, int h, int w)
    {
        int y0 = int.MaxValue, y1 = int.MinValue, x0 = int.MaxValue, x1 = int.MinValue;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (map[y * w + x] > 0) { y0 = Math.Min(y0, y); y1 = Math.Max(y1, y + 1); x0 = Math.Min(x0, x); x1 = Math.Max(x1, x + 1); }
        return (y0, y1, x0, x1);
    }

    /// <summary>Binary closing (dilation then erosion with a (2r+1)² square; the erosion ignores pixels outside the image, so closing never removes a pixel) of [N,h,w] (bool or float) as a float map.</summary>
    public static Tensor Close(Tensor m, int r)
    {
        using var scope = NewDisposeScope();
        var f = m.to_type(ScalarType.Float32).unsqueeze(1);
        if (r > 0)
        {
            int k = 2 * r + 1;
            var d = nn.functional.max_pool2d(f, k, 1, r);
            f = 1 - nn.functional.max_pool2d(1 - d, k, 1, r);
        }
        return f.squeeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>Fills holes in place: in each of the n row-major h×w binary maps (&gt; 0 = inside), background pixels not 4-connected to the border become 1.</summary>
    public static void FillHoles(float[] maps, int n, int h, int w)
    {
        var seen = new bool[h * w];
        var stack = new Stack<int>();
        for (int m = 0; m < n; m++)
        {
            int off = m * h * w;
            Array.Clear(seen);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    if ((y == 0 || x == 0 || y == h - 1 || x == w - 1) && maps[off + y * w + x] <= 0 && !seen[y * w + x]) { seen[y * w + x] = true; stack.Push(y * w + x); }
            while (stack.Count > 0)
            {
                int i = stack.Pop(), y = i / w, x = i % w;
                void Visit(int j) { if (!seen[j] && maps[off + j] <= 0) { seen[j] = true; stack.Push(j); } }
                if (x > 0) Visit(i - 1);
                if (x + 1 < w) Visit(i + 1);
                if (y > 0) Visit(i - w);
                if (y + 1 < h) Visit(i + w);
            }
            for (int i = 0; i < h * w; i++)
                if (!seen[i]) maps[off + i] = 1f;
        }
    }

    /// <summary>3×3 binary dilation of [N,h,w] (bool or float) as a float map.</summary>
    public static Tensor Dilate3(Tensor m)
    {
        using var scope = NewDisposeScope();
        var f = m.to_type(ScalarType.Float32).unsqueeze(1);
        return nn.functional.max_pool2d(f, 3, 1, 1).squeeze(1).MoveToOuterDisposeScope();
    }
}

/// <summary>UIS refinement with edges (Alg 4): split masks that merge several edge-bounded components, complete every mask by RIP, merge duplicates by IoU.</summary>
public static class InstanceRefiner
{
    /// <summary>Alg 4: refines the instance masks of one image with its edge map (CCL → split → RIP → IoU merge).</summary>
    public static List<InstanceMask> Refine(EdgeMap edges, IReadOnlyList<InstanceMask> masks, RefineOptions? options = null)
    {
        var o = options ?? new RefineOptions();
        o.Validate();
        if (masks.Count == 0) return new List<InstanceMask>();
        int W = masks[0].Width, H = masks[0].Height;
        foreach (var m in masks)
            if (m.Width != W || m.Height != H) throw new ArgumentException($"all masks of an image must have one size; got {W}x{H} and {m.Width}x{m.Height}");
        TorchRuntime.EnsureLoaded();
        var (h, w) = RefineGrid.WorkSize(W, H, edges, o.MaxSide);
        int n = masks.Count;

        var candidates = new List<InstanceMask>();
        var family = new List<int>();   // index of the input mask a candidate comes from
        var isParent = new List<bool>(); // the original of a split mask
        using (NewDisposeScope())
        {
            var E = RefineGrid.EdgesAt(edges, h, w);
            var eBin = E.ge(o.EdgeThreshold);
            var mLow = RefineGrid.MasksAt(masks.Select(m => m.Pixels).ToList(), H, W, h, w);
            var mBin = mLow.ge(0.5f);

            // Alg 4 line 1: CCL of the non-edge pixels
            var cc = ConnectedComponents.LabelNonEdge(E.data<float>().ToArray(), w, h, o.EdgeThreshold, o.Connectivity, o.MinArea);
            var labels = tensor(cc.Labels.Select(l => (long)l).ToArray(), new long[] { h * w });
            int C = cc.Count;
            // overlap[n, c] = |mask n ∩ component c| (working pixels)
            var overlap = zeros(n, C + 1).scatter_add_(1, labels.unsqueeze(0).expand(n, -1), mBin.flatten(1).to_type(ScalarType.Float32));
            var areas = tensor(cc.Areas.Select(a => (float)a).ToArray());
            areas[0] = tensor(float.PositiveInfinity);
            var maskArea = mBin.flatten(1).sum(1).to_type(ScalarType.Float32).clamp_min(1);
            var qualifies = (overlap / areas.unsqueeze(0)).ge(o.SplitCoverage) & (overlap / maskArea.unsqueeze(1)).ge(o.SplitMinFraction);
            qualifies[TensorIndex.Colon, 0] = tensor(false);
            var qual = qualifies.contiguous().data<bool>().ToArray();
            // a mask with no edge pixel within the RIP radius has no evidence to be refined by: it is kept as it is
            var near = nn.functional.max_pool2d(mBin.to_type(ScalarType.Float32).unsqueeze(1), 2 * o.Radius + 1, 1, o.Radius).squeeze(1);
            var touches = (near.gt(0) & eBin.unsqueeze(0)).flatten(1).any(1).data<bool>().ToArray();
            // RIP windows: a seed can only reach the components it overlaps (others are behind edges) — their box plus the radius
            var compBox = RefineGrid.ComponentBoxes(cc);
            var anyOverlap = zeros(n, C + 1).scatter_add_(1, labels.unsqueeze(0).expand(n, -1), mLow.gt(0).flatten(1).to_type(ScalarType.Float32))
                .gt(0).contiguous().data<bool>().ToArray();
            var mLowArr = mLow.contiguous().data<float>().ToArray();
            var windows = new List<(int, int, int, int)>();

            // Alg 4 lines 2-3: seeds for RIP — split parts (mask ∩ component) or the whole mask
            var seeds = new List<Tensor>();
            var seedOf = new List<(int Mask, bool Split)>();
            var labels2d = labels.view(h, w);
            for (int i = 0; i < n; i++)
            {
                var comps = new List<int>();
                for (int c = 1; c <= C; c++) if (qual[i * (C + 1) + c]) comps.Add(c);
                if (comps.Count >= 2)
                {
                    foreach (int c in comps)
                    {
                        seeds.Add(mLow[i] * labels2d.eq(c).to_type(ScalarType.Float32));
                        seedOf.Add((i, true));
                        windows.Add(RefineGrid.Grow(new[] { compBox[c] }, o.Radius));
                    }
                }
                else if (touches[i])
                {
                    seeds.Add(mLow[i]);
                    seedOf.Add((i, false));
                    var boxes = new List<(int, int, int, int)> { RefineGrid.Box(mLowArr.AsSpan(i * h * w, h * w), h, w) };
                    for (int c = 1; c <= C; c++) if (anyOverlap[i * (C + 1) + c]) boxes.Add(compBox[c]);
                    windows.Add(RefineGrid.Grow(boxes, o.Radius));
                }
            }

            byte[][] refined = Array.Empty<byte[]>();
            bool[] valid = Array.Empty<bool>();
            if (seeds.Count > 0)
            {
                using var aff = PathAffinity.Build(E, o.Radius, o.Beta);
                var S = stack(seeds, 0);
                // Alg 4 lines 4-6: M* = Tᵗ (M ⊙ (1−E)), normalised to its maximum and thresholded
                var P = Rip.Run(aff, S, E, o.Steps, o.Tolerance, windows);
                var peak = P.flatten(1).amax(new long[] { 1 });
                var Pn = Rip.NormalizeToMax(P);
                var seedBin = S.ge(0.5f);
                // edge pixels never receive propagated mass (their affinity to others is 0): give a seed its own edge pixels that border the result
                var edgeAdd = seedBin & eBin.unsqueeze(0) & RefineGrid.Dilate3(Pn.ge(o.PropagationThreshold)).gt(0);
                var F = Pn.maximum(edgeAdd.to_type(ScalarType.Float32));
                // leak guard: an open contour lets the walk flood the background; collapse guard: texture edges trap the walk in a corner of the seed
                var grown = F.ge(o.PropagationThreshold).flatten(1).sum(1).to_type(ScalarType.Float64);
                var seedArea = seedBin.flatten(1).sum(1).to_type(ScalarType.Float64).clamp_min(1);
                var kept = (F.ge(o.PropagationThreshold) & seedBin).flatten(1).sum(1).to_type(ScalarType.Float64);
                var leak = (grown.gt(seedArea * o.MaxGrowth) | kept.lt(seedArea * o.MinKeep)).data<bool>().ToArray();
                var pk = peak.data<float>().ToArray();
                var fSeed = seedBin.to_type(ScalarType.Float32);
                for (int s = 0; s < leak.Length; s++)
                    if (leak[s]) F[s] = fSeed[s];
                // clean-up of each refined mask: closing bridges thin texture edges, then holes are filled
                var B = RefineGrid.Close(F.ge(o.PropagationThreshold), o.CloseRadius);
                if (o.FillHoles)
                {
                    var arr = B.contiguous().data<float>().ToArray();
                    RefineGrid.FillHoles(arr, (int)B.shape[0], h, w);
                    B = tensor(arr, B.shape);
                }
                refined = RefineGrid.UpsampleThreshold(B, H, W, 0.5f);
                valid = pk.Select(v => v > 0).ToArray();
                for (int s = 0; s < leak.Length; s++)
                    if (leak[s] && !seedOf[s].Split) valid[s] = false; // keep the original mask instead
            }

            // assemble candidates in input order
            int sIdx = 0;
            for (int i = 0; i < n; i++)
            {
                var src = masks[i];
                bool any = sIdx < seedOf.Count && seedOf[sIdx].Mask == i;
                if (!any)
                {
                    Add(new InstanceMask(W, H, (byte[])src.Pixels.Clone(), src.CategoryId, src.Score), i, false);
                    continue;
                }
                bool split = seedOf[sIdx].Split;
                while (sIdx < seedOf.Count && seedOf[sIdx].Mask == i)
                {
                    if (valid[sIdx])
                        Add(new InstanceMask(W, H, refined[sIdx], src.CategoryId, src.Score), i, false);
                    else if (!split)
                        Add(new InstanceMask(W, H, (byte[])src.Pixels.Clone(), src.CategoryId, src.Score), i, false);
                    sIdx++;
                }
                if (split)
                    Add(new InstanceMask(W, H, (byte[])src.Pixels.Clone(), src.CategoryId, src.Score * o.OriginalScoreFactor), i, true);
            }
        }

        // Alg 4 line 7: merge by IoU; a split original never absorbs (or is absorbed by) its own parts
        return MaskMerge.Merge(candidates, o.MergeIoU,
            (a, b) => !(family[a] == family[b] && isParent[a] != isParent[b]));

        void Add(InstanceMask m, int fam, bool parent)
        {
            candidates.Add(m); family.Add(fam); isParent.Add(parent);
        }
    }
}

/// <summary>IoU merging of instance masks (Alg 4, last step).</summary>
public static class MaskMerge
{
    /// <summary>Alg 4 merge: repeatedly unites the same-category pair with the highest IoU above <paramref name="iouThreshold"/> (keeping the higher score) until none is left; <paramref name="mayMerge"/> vetoes pairs (by input index).</summary>
    public static List<InstanceMask> Merge(IReadOnlyList<InstanceMask> masks, double iouThreshold, Func<int, int, bool>? mayMerge = null)
    {
        int n = masks.Count;
        if (n <= 1) return masks.ToList();
        int W = masks[0].Width, H = masks[0].Height, hw = W * H;
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var all = new byte[n * hw];
        for (int i = 0; i < n; i++)
        {
            if (masks[i].Width != W || masks[i].Height != H) throw new ArgumentException($"all masks must have one size; got {W}x{H} and {masks[i].Width}x{masks[i].Height}");
            var p = masks[i].Pixels;
            for (int j = 0; j < hw; j++) all[i * hw + j] = p[j] != 0 ? (byte)1 : (byte)0;
        }
        var F = tensor(all, new long[] { n, hw }).to_type(ScalarType.Float32);
        var inter = F.mm(F.t()).to_type(ScalarType.Float64).data<double>().ToArray();
        var alive = Enumerable.Repeat(true, n).ToArray();
        var score = masks.Select(m => m.Score).ToArray();
        var merged = new bool[n];
        while (true)
        {
            int bi = -1, bj = -1;
            double best = iouThreshold;
            for (int i = 0; i < n; i++)
            {
                if (!alive[i]) continue;
                for (int j = i + 1; j < n; j++)
                {
                    if (!alive[j] || masks[i].CategoryId != masks[j].CategoryId) continue;
                    double it = inter[i * n + j], u = inter[i * n + i] + inter[j * n + j] - it;
                    double iou = u > 0 ? it / u : 0;
                    if (iou > best && (mayMerge?.Invoke(i, j) ?? true)) { best = iou; bi = i; bj = j; }
                }
            }
            if (bi < 0) break;
            // the survivor is the higher-scored mask (ties: the earlier one)
            int keep = score[bj] > score[bi] ? bj : bi, drop = keep == bi ? bj : bi;
            F[keep] = F[keep].maximum(F[drop]);
            alive[drop] = false;
            merged[keep] = true;
            var row = F.mv(F[keep]).to_type(ScalarType.Float64).data<double>().ToArray();
            for (int j = 0; j < n; j++) { inter[keep * n + j] = row[j]; inter[j * n + keep] = row[j]; }
        }
        var result = new List<InstanceMask>();
        for (int i = 0; i < n; i++)
        {
            if (!alive[i]) continue;
            if (!merged[i]) { result.Add(masks[i]); continue; }
            var px = F[i].to_type(ScalarType.Byte).contiguous().data<byte>().ToArray();
            result.Add(new InstanceMask(W, H, px, masks[i].CategoryId, score[i]));
        }
        return result;
    }
}
