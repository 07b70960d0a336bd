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

    /// <summary>
    /// One image on the working grid (<see cref="Height"/> × <see cref="Width"/>, at most <see cref="RefineOptions.MaxSide"/>): the edge
    /// map E [h, w] and the masks M [n, h, w] of Alg 4, and the clean edges the proposals, the arbiter and the re-scoring see.
    /// </summary>
    sealed class WorkingGrid
    {
        public required int ImageWidth, ImageHeight, Width, Height;
        /// <summary>E, the edge map [h, w].</summary>
        public required Tensor E;
        /// <summary>M, the masks [n, h, w] (fractions of a working pixel they cover).</summary>
        public required Tensor M;
        /// <summary>M as a flat array (mask-major).</summary>
        public required float[] MaskValues;
        /// <summary>Edge pixels with clutter removed (<see cref="EdgeRegions.CleanEdges"/>).</summary>
        public required bool[] CleanEdges;
        /// <summary>Pixels within one pixel of a clean edge (<see cref="EdgeAgreement.Near"/>).</summary>
        public required bool[] NearEdges;
        /// <summary>Edge strength near pixels below the threshold (<see cref="EdgeAgreement.NearValues"/>).</summary>
        public required float[] WeakEdges;

        /// <summary>Mask <paramref name="index"/> on the working grid, taken where it covers ≥ half a pixel.</summary>
        public bool[] MaskBinary(int index)
        {
            var binary = new bool[Height * Width];
            for (int p = 0; p < binary.Length; p++) binary[p] = MaskValues[index * Height * Width + p] >= 0.5f;
            return binary;
        }

        /// <summary>Edge agreement Q of a working-grid mask (<see cref="EdgeAgreement.Score"/>).</summary>
        public double Agreement(bool[] low) => EdgeAgreement.Score(low, CleanEdges, NearEdges, Width, Height);
    }

    /// <summary>The candidates of Alg 4 line 7, each with the input mask it comes from (its family) and whether it is the original of a split mask.</summary>
    sealed class Candidates(int imageWidth, int imageHeight, double rescoreWeight)
    {
        public readonly List<InstanceMask> Masks = new();
        public readonly List<int> Family = new();
        public readonly List<bool> IsParent = new();

        /// <summary>Adds a candidate re-scored by its edge agreement Q: score × (1 − w + w·Q); Q = NaN (no evidence) keeps the score.</summary>
        public void Add(byte[] pixels, InstanceMask source, double score, double agreement, int family, bool parent)
        {
            double rescored = double.IsNaN(agreement) ? score : score * (1 - rescoreWeight + rescoreWeight * agreement);
            Masks.Add(new InstanceMask(imageWidth, imageHeight, pixels, source.CategoryId, rescored)); Family.Add(family); IsParent.Add(parent);
        }
    }

    /// <summary>Alg 4 for one image: refines its instance masks with its edge map.</summary>
    public static List<InstanceMask> Refine(EdgeMap edges, IReadOnlyList<InstanceMask> masks, RefineOptions? options = null)
    {
        var opt = options ?? new RefineOptions();
        opt.Validate();
        if (masks.Count == 0) return new List<InstanceMask>();
        var (imageWidth, imageHeight) = CommonSize(masks);
        TorchRuntime.EnsureLoaded();
        var (height, width) = RefineGrid.WorkSize(imageWidth, imageHeight, edges, opt.MaxSide);

        var candidates = new Candidates(imageWidth, imageHeight, opt.RescoreWeight);
        using (NewDisposeScope())
        {
            var grid = ToWorkingGrid(edges, masks, imageWidth, imageHeight, height, width, opt);
            var proposals = opt.Competition ? RegionProposals(grid, masks, opt) : PerMaskProposals(grid, masks, opt);
            ArbitrateAndRescore(grid, masks, proposals, opt, candidates);
        }
        return MergeByIoU(candidates, opt.MergeIoU);
    }

    /// <summary>The image size all masks share (an error when they differ).</summary>
    static (int Width, int Height) CommonSize(IReadOnlyList<InstanceMask> masks)
    {
        int width = masks[0].Width, height = masks[0].Height;
        foreach (var mask in masks)
            if (mask.Width != width || mask.Height != height) throw new ArgumentException($"all masks of an image must have one size; got {width}x{height} and {mask.Width}x{mask.Height}");
        return (width, height);
    }

    /// <summary>The edge map and the masks resampled to the working grid, and the clean edges (step 1 of docs/method.md).</summary>
    static WorkingGrid ToWorkingGrid(EdgeMap edges, IReadOnlyList<InstanceMask> masks, int imageWidth, int imageHeight, int height, int width, RefineOptions opt)
    {
        var E = RefineGrid.EdgesAt(edges, height, width);
        var M = RefineGrid.MasksAt(masks.Select(m => m.Pixels).ToList(), imageHeight, imageWidth, height, width);
        var edgeValues = E.contiguous().data<float>().ToArray();
        var maskValues = M.contiguous().data<float>().ToArray();
        // edge pixels with clutter removed: what the regions, the "touches" test and the arbiter see
        var clean = EdgeRegions.CleanEdges(edgeValues, width, height, opt.EdgeThreshold, opt.MinEdgeLength);
        var near = EdgeAgreement.Near(clean, width, height);
        // edge strength below the threshold still counts against joining across it (the boundary of two similar objects)
        var weak = EdgeAgreement.NearValues(edgeValues, clean, opt.EdgeThreshold, width, height);
        return new WorkingGrid
        {
            ImageWidth = imageWidth, ImageHeight = imageHeight, Width = width, Height = height,
            E = E, M = M, MaskValues = maskValues, CleanEdges = clean, NearEdges = near, WeakEdges = weak,
        };
    }

    /// <summary>
    /// The arbiter and the re-scoring (steps 5-6 of docs/method.md): a proposal replaces the original only when its contour agrees better
    /// with the edges; every mask with a proposal is re-scored by its edge agreement. Adds one or more candidates per input mask, in order.
    /// </summary>
    static void ArbitrateAndRescore(WorkingGrid grid, IReadOnlyList<InstanceMask> masks, Proposal?[] proposals, RefineOptions opt, Candidates candidates)
    {
        for (int i = 0; i < masks.Count; i++)
        {
            var original = masks[i];
            var originalLow = grid.MaskBinary(i);
            double originalQ = grid.Agreement(originalLow);
            var proposal = proposals[i];
            if (proposal is not null && proposal.Split && proposal.Parts.Count > 0
                && TryAddSplit(grid, original, i, originalLow, originalQ, proposal.Parts, opt, candidates))
                continue;
            if (proposal?.Whole is { } whole)
            {
                var final = opt.Arbiter ? Arbitrate(grid, originalLow, whole, original.Pixels) : whole;
                candidates.Add(final.Full, original, original.Score, grid.Agreement(final.Low), i, false);
                continue;
            }
            // the edges say nothing about a mask without a proposal (no edge near it): it keeps its score
            candidates.Add((byte[])original.Pixels.Clone(), original, original.Score, proposal is null ? double.NaN : originalQ, i, false);
        }
    }

    /// <summary>
    /// A split: each part keeps what the mask had of it and gains only what the edges support; with the arbiter the split must agree better
    /// with the edges (mean Q of the parts ≥ the original's + <see cref="RefineOptions.ArbiterMargin"/>). When taken, the parts and the
    /// original (score × <see cref="RefineOptions.OriginalScoreFactor"/>) become candidates and the result is true.
    /// </summary>
    static bool TryAddSplit(WorkingGrid grid, InstanceMask original, int index, bool[] originalLow, double originalQ,
        List<(byte[] Full, bool[] Low)> proposedParts, RefineOptions opt, Candidates candidates)
    {
        var parts = !opt.Arbiter ? proposedParts
            : proposedParts.Select(part => Arbitrate(grid, originalLow.Zip(part.Low, (a, b) => a && b).ToArray(), part, original.Pixels)).ToList();
        var partQ = parts.Select(part => grid.Agreement(part.Low)).ToList();
        bool taken = !opt.Arbiter || partQ.Average() >= originalQ + opt.ArbiterMargin;
        if (!taken) return false;
        for (int k = 0; k < parts.Count; k++) candidates.Add(parts[k].Full, original, original.Score, partQ[k], index, false);
        candidates.Add((byte[])original.Pixels.Clone(), original, original.Score * opt.OriginalScoreFactor, originalQ, index, true);
        return true;
    }

    /// <summary>The original with the edge-supported changes of a proposal (<see cref="EdgeArbiter"/>); unchanged proposals keep their full-resolution pixels.</summary>
    static (byte[] Full, bool[] Low) Arbitrate(WorkingGrid grid, bool[] baseLow, (byte[] Full, bool[] Low) proposal, byte[] original)
    {
        var low = EdgeArbiter.Apply(baseLow, proposal.Low, grid.NearEdges, grid.WeakEdges, grid.Width, grid.Height);
        return low.AsSpan().SequenceEqual(proposal.Low) ? proposal : ToFull(low, original, grid.ImageWidth, grid.ImageHeight, grid.Height, grid.Width);
    }

    /// <summary>Alg 4 line 7: merge by IoU; a split original never absorbs (or is absorbed by) its own parts.</summary>
    static List<InstanceMask> MergeByIoU(Candidates candidates, double mergeIoU) =>
        MaskMerge.Merge(candidates.Masks, mergeIoU,
            (a, b) => !(candidates.Family[a] == candidates.Family[b] && candidates.IsParent[a] != candidates.IsParent[b]));

    /// <summary>
    /// Alg 4 with competition: edge regions (<see cref="EdgeRegions.Partition"/>); a mask proposes the union of the regions it covers by at
    /// least <see cref="RefineOptions.RegionVote"/> (majority vote per region, which completes fragments and drops spill), and is split into
    /// those regions when two or more of them each hold ≥ <see cref="RefineOptions.SplitMinFraction"/> of it.
    /// </summary>
    static Proposal?[] RegionProposals(WorkingGrid grid, IReadOnlyList<InstanceMask> masks, RefineOptions opt)
    {
        int maskCount = masks.Count;
        var result = new Proposal?[maskCount];
        var touches = TouchesEdges(grid.CleanEdges, grid.MaskValues, maskCount, grid.Height, grid.Width, opt.Radius);
        if (!touches.Any(t => t)) return result;
        // steps 2-3 of docs/method.md: gap-tolerant CCL cores, competing RIP → regions
        var regions = EdgeRegions.Partition(grid.E, grid.CleanEdges, opt.GapTolerance, opt);
        if (regions.Count == 0) return result;
        var innerArea = InnerAreas(regions, grid.CleanEdges);
        for (int i = 0; i < maskCount; i++)
        {
            if (!touches[i]) continue; // no edge near the mask: no evidence to refine it by
            var vote = VoteRegions(grid, regions, innerArea, i, opt);
            if (vote is not { } chosen) continue;
            result[i] = ProposeFromRegions(grid, regions, chosen.Voted, chosen.SplitRegions, i, masks[i].Pixels, opt);
        }
        return result;
    }

    /// <summary>Number of non-edge pixels of each region (index = region label; 0 = none).</summary>
    static int[] InnerAreas(RegionPartition regions, bool[] clean)
    {
        var innerArea = new int[regions.Count + 1];
        for (int p = 0; p < clean.Length; p++) if (!clean[p]) innerArea[regions.Labels[p]]++;
        return innerArea;
    }

    /// <summary>
    /// The region vote of mask <paramref name="index"/>: the regions it covers by ≥ <see cref="RefineOptions.RegionVote"/>, and among them
    /// those that would be parts of a split; null when it covers no region's non-edge pixels or wins no vote.
    /// </summary>
    static (List<int> Voted, List<int> SplitRegions)? VoteRegions(WorkingGrid grid, RegionPartition regions, int[] innerArea, int index, RefineOptions opt)
    {
        int pixels = grid.Height * grid.Width, regionCount = regions.Count;
        var clean = grid.CleanEdges;
        // coverage of each region's non-edge pixels (the edge band of a small region would otherwise dilute the vote)
        var sum = new double[regionCount + 1];
        double total = 0;
        for (int p = 0; p < pixels; p++)
        {
            float value = grid.MaskValues[index * pixels + p];
            if (value <= 0 || clean[p]) continue;
            sum[regions.Labels[p]] += value;
            total += value;
        }
        if (total <= 0) return null;
        var voted = new List<int>();
        var splitRegions = new List<int>();
        for (int j = 1; j <= regionCount; j++)
        {
            if (sum[j] < opt.RegionVote * innerArea[j]) continue;
            voted.Add(j);
            if (sum[j] >= opt.SplitMinFraction * total && innerArea[j] >= opt.MinArea) splitRegions.Add(j);
        }
        if (voted.Count == 0) return null;
        return (voted, splitRegions);
    }

    /// <summary>
    /// The proposal of mask <paramref name="index"/> from its vote: a split into two or more regions, and the union of the voted regions
    /// unless the leak guard (grew beyond <see cref="RefineOptions.MaxGrowth"/> × the mask) or the collapse guard (kept under
    /// <see cref="RefineOptions.MinKeep"/> of it) drops it.
    /// </summary>
    static Proposal ProposeFromRegions(WorkingGrid grid, RegionPartition regions, List<int> voted, List<int> splitRegions, int index, byte[] original, RefineOptions opt)
    {
        int pixels = grid.Height * grid.Width;
        var proposal = new Proposal();
        if (splitRegions.Count >= 2)
        {
            proposal.Split = true;
            foreach (int j in splitRegions) proposal.Parts.Add(ToFull(Union(regions, new[] { j }, opt.FillHoles), original, grid.ImageWidth, grid.ImageHeight, grid.Height, grid.Width));
        }
        var whole = Union(regions, voted, opt.FillHoles);
        long wholeArea = whole.LongCount(b => b), seedArea = 0, kept = 0;
        for (int p = 0; p < pixels; p++)
            if (grid.MaskValues[index * pixels + p] >= 0.5f) { seedArea++; if (whole[p]) kept++; }
        // leak guard (grew far beyond the mask) and collapse guard (kept too little of it)
        if (wholeArea <= opt.MaxGrowth * Math.Max(1, seedArea) && kept >= opt.MinKeep * seedArea)
            proposal.Whole = ToFull(whole, original, grid.ImageWidth, grid.ImageHeight, grid.Height, grid.Width);
        return proposal;
    }

    /// <summary>The union of <paramref name="regions"/> of a partition on the working grid, holes filled when asked.</summary>
    static bool[] Union(RegionPartition part, IReadOnlyCollection<int> regions, bool fillHoles)
    {
        var selected = new bool[part.Count + 1];
        foreach (int j in regions) selected[j] = true;
        var union = new bool[part.Labels.Length];
        for (int p = 0; p < union.Length; p++) union[p] = selected[part.Labels[p]];
        if (fillHoles)
        {
            var filled = union.Select(b => b ? 1f : 0f).ToArray();
            RefineGrid.FillHoles(filled, 1, part.Height, part.Width);
            for (int p = 0; p < union.Length; p++) union[p] = filled[p] > 0;
        }
        return union;
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
        var lowMap = tensor(low.Select(b => b ? 1f : 0f).ToArray(), new long[] { 1, 1, h, w });
        var up = nn.functional.interpolate(lowMap, new long[] { H, W }, mode: InterpolationMode.Bilinear, align_corners: false).contiguous().data<float>().ToArray();
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

    /// <summary>RIP seeds of Alg 4 read literally: one map per seed, the mask it comes from and whether it is a split part, and its RIP window.</summary>
    sealed class RipSeeds
    {
        public readonly List<Tensor> Maps = new();
        public readonly List<(int Mask, bool Split)> Source = new();
        public readonly List<(int, int, int, int)> Windows = new();
    }

    /// <summary>Alg 4 read literally: CCL of the non-edge pixels, split a mask covering ≥ 2 sizeable components, RIP of each seed alone, threshold, guards.</summary>
    static Proposal?[] PerMaskProposals(WorkingGrid grid, IReadOnlyList<InstanceMask> masks, RefineOptions opt)
    {
        int maskCount = masks.Count;
        var result = new Proposal?[maskCount];
        var edgeBinary = grid.E.ge(opt.EdgeThreshold);
        var maskBinary = grid.M.ge(0.5f);

        // Alg 4 line 1: CCL of the non-edge pixels
        var components = ConnectedComponents.LabelNonEdge(grid.E.data<float>().ToArray(), grid.Width, grid.Height, opt.EdgeThreshold, opt.Connectivity, opt.MinArea);
        var labels = tensor(components.Labels.Select(l => (long)l).ToArray(), new long[] { grid.Height * grid.Width });
        var qualifies = SplitComponents(components, labels, maskBinary, maskCount, opt);
        // a mask with no edge pixel within the RIP radius has no evidence to be refined by: it is kept as it is
        var touches = TouchesEdgePixels(maskBinary, edgeBinary, opt.Radius);
        var seeds = SeedsForRip(grid, components, labels, qualifies, touches, maskCount, opt);
        if (seeds.Maps.Count == 0) return result;

        // Alg 4 lines 4-6: RIP of each seed alone, normalised to its maximum and thresholded, with the guards and the clean-up
        var (propagated, peak, seedBinary) = RandomWalk(grid, edgeBinary, seeds, opt);
        var leaked = LeakAndCollapseGuards(propagated, seedBinary, opt);
        var peaks = peak.data<float>().ToArray();
        var (refinedLow, refinedFull) = CleanUp(grid, propagated, opt);
        int pixels = grid.Height * grid.Width;
        for (int s = 0; s < seeds.Source.Count; s++)
        {
            var (i, split) = seeds.Source[s];
            var proposal = result[i] ??= new Proposal { Split = split };
            bool valid = peaks[s] > 0 && !(leaked[s] && !split); // a leaked whole mask keeps the original instead
            if (!valid) continue;
            var low = new bool[pixels];
            for (int p = 0; p < low.Length; p++) low[p] = refinedLow[s * pixels + p] >= 0.5f;
            if (split) proposal.Parts.Add((refinedFull[s], low));
            else proposal.Whole = (refinedFull[s], low);
        }
        return result;
    }

    /// <summary>
    /// Alg 4 line 2: which components would split each mask — it covers ≥ <see cref="RefineOptions.SplitCoverage"/> of the component and the
    /// component holds ≥ <see cref="RefineOptions.SplitMinFraction"/> of the mask. Flat [n, C + 1]; label 0 (edges, small pieces) never qualifies.
    /// </summary>
    static bool[] SplitComponents(ComponentLabels components, Tensor labels, Tensor maskBinary, int maskCount, RefineOptions opt)
    {
        int componentCount = components.Count;
        // overlap[n, c] = |mask n ∩ component c| (working pixels)
        var overlap = zeros(maskCount, componentCount + 1).scatter_add_(1, labels.unsqueeze(0).expand(maskCount, -1), maskBinary.flatten(1).to_type(ScalarType.Float32));
        var areas = tensor(components.Areas.Select(a => (float)a).ToArray());
        areas[0] = tensor(float.PositiveInfinity);
        var maskArea = maskBinary.flatten(1).sum(1).to_type(ScalarType.Float32).clamp_min(1);
        var qualifies = (overlap / areas.unsqueeze(0)).ge(opt.SplitCoverage) & (overlap / maskArea.unsqueeze(1)).ge(opt.SplitMinFraction);
        qualifies[TensorIndex.Colon, 0] = tensor(false);
        return qualifies.contiguous().data<bool>().ToArray();
    }

    /// <summary>Masks with an edge pixel (E ≥ threshold) within <paramref name="radius"/> (Chebyshev) of their binary working-grid pixels.</summary>
    static bool[] TouchesEdgePixels(Tensor maskBinary, Tensor edgeBinary, int radius)
    {
        var dilated = nn.functional.max_pool2d(maskBinary.to_type(ScalarType.Float32).unsqueeze(1), 2 * radius + 1, 1, radius).squeeze(1);
        return (dilated.gt(0) & edgeBinary.unsqueeze(0)).flatten(1).any(1).data<bool>().ToArray();
    }

    /// <summary>
    /// Alg 4 lines 2-3: seeds for RIP — the parts (mask ∩ component) of a mask that splits, or the whole mask when it touches an edge. RIP
    /// windows: a seed can only reach the components it overlaps (others are behind edges) — their box plus the radius.
    /// </summary>
    static RipSeeds SeedsForRip(WorkingGrid grid, ComponentLabels components, Tensor labels, bool[] qualifies, bool[] touches, int maskCount, RefineOptions opt)
    {
        int componentCount = components.Count, height = grid.Height, width = grid.Width;
        var componentBox = RefineGrid.ComponentBoxes(components);
        var anyOverlap = zeros(maskCount, componentCount + 1).scatter_add_(1, labels.unsqueeze(0).expand(maskCount, -1), grid.M.gt(0).flatten(1).to_type(ScalarType.Float32))
            .gt(0).contiguous().data<bool>().ToArray();
        var seeds = new RipSeeds();
        var labels2d = labels.view(height, width);
        for (int i = 0; i < maskCount; i++)
        {
            var splitInto = new List<int>();
            for (int c = 1; c <= componentCount; c++) if (qualifies[i * (componentCount + 1) + c]) splitInto.Add(c);
            if (splitInto.Count >= 2)
            {
                foreach (int c in splitInto)
                {
                    seeds.Maps.Add(grid.M[i] * labels2d.eq(c).to_type(ScalarType.Float32));
                    seeds.Source.Add((i, true));
                    seeds.Windows.Add(RefineGrid.Grow(new[] { componentBox[c] }, opt.Radius));
                }
            }
            else if (touches[i])
            {
                seeds.Maps.Add(grid.M[i]);
                seeds.Source.Add((i, false));
                var boxes = new List<(int, int, int, int)> { RefineGrid.Box(grid.MaskValues.AsSpan(i * height * width, height * width), height, width) };
                for (int c = 1; c <= componentCount; c++) if (anyOverlap[i * (componentCount + 1) + c]) boxes.Add(componentBox[c]);
                seeds.Windows.Add(RefineGrid.Grow(boxes, opt.Radius));
            }
        }
        return seeds;
    }

    /// <summary>
    /// Alg 4 lines 4-6, the RIP random walk: T = D⁻¹A^∘β (<see cref="PathAffinity"/>), M* = Tᵗ (M ⊙ (1−E)) for all seeds M at once,
    /// normalised to its maximum; edge pixels never receive propagated mass (their affinity to others is 0), so a seed gets back its own
    /// edge pixels that border the result. Returns the propagated maps F [s, h, w], the peak of each M* and the binary seeds.
    /// </summary>
    static (Tensor Propagated, Tensor Peak, Tensor SeedBinary) RandomWalk(WorkingGrid grid, Tensor edgeBinary, RipSeeds seeds, RefineOptions opt)
    {
        using var affinity = PathAffinity.Build(grid.E, opt.Radius, opt.Beta);
        var M = stack(seeds.Maps, 0);
        var walked = Rip.Run(affinity, M, grid.E, opt.Steps, opt.Tolerance, seeds.Windows);
        var peak = walked.flatten(1).amax(new long[] { 1 });
        var normalised = Rip.NormalizeToMax(walked);
        var seedBinary = M.ge(0.5f);
        var edgeAdd = seedBinary & edgeBinary.unsqueeze(0) & RefineGrid.Dilate3(normalised.ge(opt.PropagationThreshold)).gt(0);
        var F = normalised.maximum(edgeAdd.to_type(ScalarType.Float32));
        return (F, peak, seedBinary);
    }

    /// <summary>
    /// Leak guard (an open contour lets the walk flood the background: more than <see cref="RefineOptions.MaxGrowth"/> × the seed) and
    /// collapse guard (texture edges trap the walk in a corner of the seed: keeps under <see cref="RefineOptions.MinKeep"/> of it): such a
    /// seed's map is replaced by the seed in <paramref name="propagated"/>. True for each seed a guard caught.
    /// </summary>
    static bool[] LeakAndCollapseGuards(Tensor propagated, Tensor seedBinary, RefineOptions opt)
    {
        var grown = propagated.ge(opt.PropagationThreshold).flatten(1).sum(1).to_type(ScalarType.Float64);
        var seedArea = seedBinary.flatten(1).sum(1).to_type(ScalarType.Float64).clamp_min(1);
        var kept = (propagated.ge(opt.PropagationThreshold) & seedBinary).flatten(1).sum(1).to_type(ScalarType.Float64);
        var leaked = (grown.gt(seedArea * opt.MaxGrowth) | kept.lt(seedArea * opt.MinKeep)).data<bool>().ToArray();
        var seedMaps = seedBinary.to_type(ScalarType.Float32);
        for (int s = 0; s < leaked.Length; s++)
            if (leaked[s]) propagated[s] = seedMaps[s];
        return leaked;
    }

    /// <summary>
    /// Clean-up of each refined mask: threshold at <see cref="RefineOptions.PropagationThreshold"/>, a closing bridges thin texture edges,
    /// then holes are filled; returns the working-grid maps (flat) and each mask at the image size.
    /// </summary>
    static (float[] Low, byte[][] Full) CleanUp(WorkingGrid grid, Tensor propagated, RefineOptions opt)
    {
        var closed = RefineGrid.Close(propagated.ge(opt.PropagationThreshold), opt.CloseRadius);
        var low = closed.contiguous().data<float>().ToArray();
        if (opt.FillHoles) RefineGrid.FillHoles(low, (int)closed.shape[0], grid.Height, grid.Width);
        var full = RefineGrid.UpsampleThreshold(tensor(low, closed.shape), grid.ImageHeight, grid.ImageWidth, 0.5f);
        return (low, full);
    }
}
