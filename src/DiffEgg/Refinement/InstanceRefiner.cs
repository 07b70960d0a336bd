using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Refinement;

/// <summary>
/// UIS refinement with edges (Alg 4), robust to gaps and clutter in the edge map: edge regions (CCL cores + competing RIP) → each mask is
/// split into, or completed to, the regions it covers → the edge agreement of each proposal is compared with the original's and the
/// better one is kept → duplicates are merged by IoU. <see cref="RefineOptions.Competition"/> = false gives Alg 4 read literally
/// (each mask propagated alone).
/// </summary>
public static class InstanceRefiner
{
    /// <summary>What refinement proposes for one input mask: split parts and/or a whole refined mask (full-resolution pixels and the working-grid binary).</summary>
    sealed class Proposal
    {
        public bool Split;
        public readonly List<(byte[] Full, bool[] Low)> Parts = new();
        public (byte[] Full, bool[] Low)? Whole;
    }

    /// <summary>Alg 4 for one image: refines its instance masks with its edge map.</summary>
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
        bool[]? near = null;
        float[]? weak = null;
        using (NewDisposeScope())
        {
            var E = RefineGrid.EdgesAt(edges, h, w);
            var mLow = RefineGrid.MasksAt(masks.Select(m => m.Pixels).ToList(), H, W, h, w);
            var eArr = E.contiguous().data<float>().ToArray();
            var mLowArr = mLow.contiguous().data<float>().ToArray();
            // edge pixels with clutter removed: what the regions, the "touches" test and the arbiter see
            var clean = EdgeRegions.CleanEdges(eArr, w, h, o.EdgeThreshold, o.MinEdgeLength);
            near = EdgeAgreement.Near(clean, w, h);
            // edge strength below the threshold still counts against joining across it (the boundary of two similar objects)
            weak = EdgeAgreement.NearValues(eArr, clean, o.EdgeThreshold, w, h);
            var proposals = o.Competition
                ? RegionProposals(E, clean, masks, mLowArr, W, H, h, w, o)
                : PerMaskProposals(E, masks, mLow, W, H, h, w, o);

            // the arbiter: a proposal replaces the original only when its contour agrees better with the edges
            for (int i = 0; i < n; i++)
            {
                var src = masks[i];
                var oLow = new bool[h * w];
                for (int p = 0; p < oLow.Length; p++) oLow[p] = mLowArr[i * h * w + p] >= 0.5f;
                double qO = EdgeAgreement.Score(oLow, clean, near, w, h);
                var pr = proposals[i];
                if (pr is not null && pr.Split && pr.Parts.Count > 0)
                {
                    // each part keeps what the mask had of it and gains only what the edges support; the split must agree better with the edges
                    var parts = !o.Arbiter ? pr.Parts : pr.Parts.Select(x => Arbitrate(oLow.Zip(x.Low, (a, b) => a && b).ToArray(), x, src.Pixels)).ToList();
                    var qParts = parts.Select(x => EdgeAgreement.Score(x.Low, clean, near, w, h)).ToList();
                    if (!o.Arbiter || qParts.Average() >= qO + o.ArbiterMargin)
                    {
                        for (int k = 0; k < parts.Count; k++) Add(parts[k].Full, src, src.Score, qParts[k], i, false);
                        Add((byte[])src.Pixels.Clone(), src, src.Score * o.OriginalScoreFactor, qO, i, true);
                        continue;
                    }
                }
                if (pr?.Whole is { } whole)
                {
                    var final = o.Arbiter ? Arbitrate(oLow, whole, src.Pixels) : whole;
                    Add(final.Full, src, src.Score, EdgeAgreement.Score(final.Low, clean, near, w, h), i, false);
                    continue;
                }
                // the edges say nothing about a mask without a proposal (no edge near it): it keeps its score
                Add((byte[])src.Pixels.Clone(), src, src.Score, pr is null ? double.NaN : qO, i, false);
            }
        }

        // Alg 4 line 7: merge by IoU; a split original never absorbs (or is absorbed by) its own parts
        return MaskMerge.Merge(candidates, o.MergeIoU,
            (a, b) => !(family[a] == family[b] && isParent[a] != isParent[b]));

        // the original with the edge-supported changes of a proposal (EdgeArbiter); unchanged proposals keep their full-resolution pixels
        (byte[] Full, bool[] Low) Arbitrate(bool[] baseLow, (byte[] Full, bool[] Low) proposal, byte[] original)
        {
            var low = EdgeArbiter.Apply(baseLow, proposal.Low, near!, weak!, w, h);
            return low.AsSpan().SequenceEqual(proposal.Low) ? proposal : ToFull(low, original, W, H, h, w);
        }

        void Add(byte[] px, InstanceMask src, double score, double q, int fam, bool parent)
        {
            double s = double.IsNaN(q) ? score : score * (1 - o.RescoreWeight + o.RescoreWeight * q);
            candidates.Add(new InstanceMask(W, H, px, src.CategoryId, s)); family.Add(fam); isParent.Add(parent);
        }
    }

    /// <summary>
    /// Alg 4 with competition: edge regions (<see cref="EdgeRegions.Partition"/>); a mask proposes the union of the regions it covers by at
    /// least <see cref="RefineOptions.RegionVote"/> (majority vote per region, which completes fragments and drops spill), and is split into
    /// those regions when two or more of them each hold ≥ <see cref="RefineOptions.SplitMinFraction"/> of it.
    /// </summary>
    static Proposal?[] RegionProposals(Tensor E, bool[] clean, IReadOnlyList<InstanceMask> masks, float[] mLow, int W, int H, int h, int w, RefineOptions o)
    {
        int n = masks.Count, hw = h * w;
        var result = new Proposal?[n];
        var touches = TouchesEdges(clean, mLow, n, h, w, o.Radius);
        if (!touches.Any(t => t)) return result;
        var part = EdgeRegions.Partition(E, clean, o.GapTolerance, o);
        int R = part.Count;
        if (R == 0) return result;
        var innerArea = new int[R + 1];
        for (int p = 0; p < hw; p++) if (!clean[p]) innerArea[part.Labels[p]]++;
        for (int i = 0; i < n; i++)
        {
            if (!touches[i]) continue; // no edge near the mask: no evidence to refine it by
            // coverage of each region's non-edge pixels (the edge band of a small region would otherwise dilute the vote)
            var sum = new double[R + 1];
            double total = 0;
            for (int p = 0; p < hw; p++)
            {
                float v = mLow[i * hw + p];
                if (v <= 0 || clean[p]) continue;
                sum[part.Labels[p]] += v;
                total += v;
            }
            if (total <= 0) continue;
            var voted = new List<int>();
            var splitRegions = new List<int>();
            for (int j = 1; j <= R; j++)
            {
                if (sum[j] < o.RegionVote * innerArea[j]) continue;
                voted.Add(j);
                if (sum[j] >= o.SplitMinFraction * total && innerArea[j] >= o.MinArea) splitRegions.Add(j);
            }
            if (voted.Count == 0) continue;
            var pr = new Proposal();
            var orig = masks[i].Pixels;
            if (splitRegions.Count >= 2)
            {
                pr.Split = true;
                foreach (int j in splitRegions) pr.Parts.Add(ToFull(Union(part, new[] { j }, o.FillHoles), orig, W, H, h, w));
            }
            var whole = Union(part, voted, o.FillHoles);
            long wholeArea = whole.LongCount(b => b), seedArea = 0, kept = 0;
            for (int p = 0; p < hw; p++)
                if (mLow[i * hw + p] >= 0.5f) { seedArea++; if (whole[p]) kept++; }
            // leak guard (grew far beyond the mask) and collapse guard (kept too little of it)
            if (wholeArea <= o.MaxGrowth * Math.Max(1, seedArea) && kept >= o.MinKeep * seedArea)
                pr.Whole = ToFull(whole, orig, W, H, h, w);
            result[i] = pr;
        }
        return result;
    }

    static bool[] Union(RegionPartition part, IReadOnlyCollection<int> regions, bool fillHoles)
    {
        var sel = new bool[part.Count + 1];
        foreach (int j in regions) sel[j] = true;
        var u = new bool[part.Labels.Length];
        for (int p = 0; p < u.Length; p++) u[p] = sel[part.Labels[p]];
        if (fillHoles)
        {
            var f = u.Select(b => b ? 1f : 0f).ToArray();
            RefineGrid.FillHoles(f, 1, part.Height, part.Width);
            for (int p = 0; p < u.Length; p++) u[p] = f[p] > 0;
        }
        return u;
    }

    /// <summary>
    /// A working-grid mask at the image size: the same grid is copied; otherwise it is upsampled bilinearly and taken where it is clearly in
    /// (≥ 0.75), left out where clearly out (≤ 0.25), and the original's pixels are kept in between (the original's detail survives a coarse grid).
    /// </summary>
    static (byte[] Full, bool[] Low) ToFull(bool[] low, byte[] original, int W, int H, int h, int w)
    {
        var full = new byte[W * H];
        if (h == H && w == W)
        {
            for (int p = 0; p < full.Length; p++) full[p] = low[p] ? (byte)1 : (byte)0;
            return (full, low);
        }
        using var scope = NewDisposeScope();
        var t = tensor(low.Select(b => b ? 1f : 0f).ToArray(), new long[] { 1, 1, h, w });
        var up = nn.functional.interpolate(t, new long[] { H, W }, mode: InterpolationMode.Bilinear, align_corners: false).contiguous().data<float>().ToArray();
        for (int p = 0; p < full.Length; p++)
            full[p] = up[p] >= 0.75f || (up[p] > 0.25f && original[p] != 0) ? (byte)1 : (byte)0;
        return (full, low);
    }

    /// <summary>Masks with an edge pixel within <paramref name="radius"/> (Chebyshev) of their working-grid pixels (fraction ≥ 0.5).</summary>
    static bool[] TouchesEdges(bool[] clean, float[] mLow, int n, int h, int w, int radius)
    {
        int hw = h * w;
        // edge pixels dilated by the radius: a separable max filter (rows, then columns)
        var rows = new bool[hw];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                if (!clean[y * w + x]) continue;
                for (int xx = Math.Max(0, x - radius); xx <= Math.Min(w - 1, x + radius); xx++) rows[y * w + xx] = true;
            }
        var near = new bool[hw];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                if (!rows[y * w + x]) continue;
                for (int yy = Math.Max(0, y - radius); yy <= Math.Min(h - 1, y + radius); yy++) near[yy * w + x] = true;
            }
        var result = new bool[n];
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++)
                if (near[p] && mLow[i * hw + p] >= 0.5f) { result[i] = true; break; }
        return result;
    }

    /// <summary>Alg 4 read literally: CCL of the non-edge pixels, split a mask covering ≥ 2 sizeable components, RIP of each seed alone, threshold, guards.</summary>
    static Proposal?[] PerMaskProposals(Tensor E, IReadOnlyList<InstanceMask> masks, Tensor mLow, int W, int H, int h, int w, RefineOptions o)
    {
        int n = masks.Count;
        var result = new Proposal?[n];
        var eBin = E.ge(o.EdgeThreshold);
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
        var nearT = nn.functional.max_pool2d(mBin.to_type(ScalarType.Float32).unsqueeze(1), 2 * o.Radius + 1, 1, o.Radius).squeeze(1);
        var touches = (nearT.gt(0) & eBin.unsqueeze(0)).flatten(1).any(1).data<bool>().ToArray();
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
        if (seeds.Count == 0) return result;

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
        var bArr = B.contiguous().data<float>().ToArray();
        if (o.FillHoles) RefineGrid.FillHoles(bArr, (int)B.shape[0], h, w);
        var refined = RefineGrid.UpsampleThreshold(tensor(bArr, B.shape), H, W, 0.5f);
        for (int s = 0; s < seedOf.Count; s++)
        {
            var (i, split) = seedOf[s];
            var pr = result[i] ??= new Proposal { Split = split };
            bool valid = pk[s] > 0 && !(leak[s] && !split); // a leaked whole mask keeps the original instead
            if (!valid) continue;
            var low = new bool[h * w];
            for (int p = 0; p < low.Length; p++) low[p] = bArr[s * h * w + p] >= 0.5f;
            if (split) pr.Parts.Add((refined[s], low));
            else pr.Whole = (refined[s], low);
        }
        return result;
    }
}
