using System.Text;
using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Evaluation;

/// <summary>What the IoU of COCO instance evaluation is computed on.</summary>
public enum CocoIouType { Segm, Bbox }

/// <summary>COCOeval parameters (pycocotools defaults; iouThrs/recThrs built like numpy linspace).</summary>
public sealed class CocoEvalParams
{
    /// <summary>np.linspace(.5, .95, 10).</summary>
    public double[] IouThrs { get; init; } = PyNum.Linspace(.5, .95, (int)Math.Round((.95 - .5) / .05) + 1);
    /// <summary>np.linspace(0, 1, 101).</summary>
    public double[] RecThrs { get; init; } = PyNum.Linspace(0.0, 1.00, (int)Math.Round((1.00 - .0) / .01) + 1);
    /// <summary>Sorted max detections per image.</summary>
    public int[] MaxDets { get; init; } = { 1, 10, 100 };
    /// <summary>Area ranges [lo, hi], both inclusive (an area a is out of range when a &lt; lo or a &gt; hi).</summary>
    public (double Lo, double Hi)[] AreaRng { get; init; } = { (0, 1e5 * 1e5), (0, 32 * 32), (32 * 32, 96 * 96), (96 * 96, 1e5 * 1e5) };
    public string[] AreaRngLbl { get; init; } = { "all", "small", "medium", "large" };
}

/// <summary>Result of COCO instance evaluation: the 12 summary numbers plus the accumulated precision/recall arrays.</summary>
public sealed class CocoEvalResult
{
    /// <summary>Names of <see cref="Stats"/>, in pycocotools' order.</summary>
    public static readonly string[] StatNames = { "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl" };

    public required CocoEvalParams Params { get; init; }
    public required CocoIouType IouType { get; init; }
    /// <summary>Evaluated category ids (sorted).</summary>
    public required long[] CatIds { get; init; }
    /// <summary>Precision [T, R, K, A, M] flattened C-order; −1 where a setting has no ground truth.</summary>
    public required double[] Precision { get; init; }
    /// <summary>Recall [T, K, A, M] flattened C-order; −1 where a setting has no ground truth.</summary>
    public required double[] Recall { get; init; }
    /// <summary>AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (fractions; −1 when undefined).</summary>
    public required double[] Stats { get; init; }
    /// <summary>Per image × category × area range results (pycocotools evalImgs), only when requested with keepPerImage.</summary>
    public IReadOnlyList<CocoImageEval>? PerImage { get; init; }

    /// <summary>The 12 summary lines exactly as pycocotools' COCOeval.summarize() prints them.</summary>
    public string Summary()
    {
        var p = Params;
        var sb = new StringBuilder();
        string iouAll = PyNum.Fixed(p.IouThrs[0], 2) + ":" + PyNum.Fixed(p.IouThrs[^1], 2);
        void Line(bool ap, string iou, string area, int maxDets, double v)
        {
            sb.Append(' ').Append((ap ? "Average Precision" : "Average Recall").PadRight(18)).Append(' ')
              .Append(ap ? "(AP)" : "(AR)").Append(" @[ IoU=").Append(iou.PadRight(9)).Append(" | area=").Append(area.PadLeft(6))
              .Append(" | maxDets=").Append(maxDets.ToString().PadLeft(3)).Append(" ] = ").Append(PyNum.Fixed(v, 3)).Append('\n');
        }
        int m2 = p.MaxDets[^1];
        Line(true, iouAll, "all", m2, Stats[0]);
        Line(true, "0.50", "all", m2, Stats[1]);
        Line(true, "0.75", "all", m2, Stats[2]);
        Line(true, iouAll, "small", m2, Stats[3]);
        Line(true, iouAll, "medium", m2, Stats[4]);
        Line(true, iouAll, "large", m2, Stats[5]);
        Line(false, iouAll, "all", p.MaxDets[0], Stats[6]);
        Line(false, iouAll, "all", p.MaxDets[1], Stats[7]);
        Line(false, iouAll, "all", m2, Stats[8]);
        Line(false, iouAll, "small", m2, Stats[9]);
        Line(false, iouAll, "medium", m2, Stats[10]);
        Line(false, iouAll, "large", m2, Stats[11]);
        return sb.ToString();
    }

    /// <summary>The stats as name → value.</summary>
    public IReadOnlyDictionary<string, double> StatsByName() => StatNames.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => Stats[x.i]);
}

/// <summary>One pycocotools evalImgs entry: detections (score-sorted, cut at max maxDets) of one image, category and area range.</summary>
public sealed record CocoImageEval(long ImageId, long CategoryId, int AreaIndex, double[] DtScores, bool[] DtMatched, bool[] DtIgnored, int NumGt, int NumGtNotIgnored)
{
    /// <summary>Number of detections D; <see cref="DtMatched"/> and <see cref="DtIgnored"/> are [T, D] row-major.</summary>
    public int D => DtScores.Length;
}

/// <summary>
/// COCO instance evaluation identical to pycocotools COCOeval (evaluate → accumulate → summarize) for iouType 'segm'
/// and 'bbox', with per-image/category work in parallel and deterministic results.
/// </summary>
public static class CocoEvaluator
{
    /// <summary>
    /// Ground truth and results with every category replaced by one category 1 "object": evaluating them is pycocotools' useCats = 0
    /// (all masks of an image are matched together).
    /// </summary>
    public static (CocoDataset Gt, List<CocoResult> Dt) ClassAgnostic(CocoDataset gt, IReadOnlyList<CocoResult> dt)
    {
        var g = new CocoDataset
        {
            Images = gt.Images.ToList(),
            Annotations = gt.Annotations.Select(a => new CocoAnnotation
            {
                Id = a.Id, ImageId = a.ImageId, CategoryId = 1, Segmentation = a.Segmentation, Bbox = a.Bbox, Area = a.Area, IsCrowd = a.IsCrowd,
            }).ToList(),
            Categories = { new CocoCategory(1, "object") },
        };
        var d = dt.Select(r => new CocoResult { ImageId = r.ImageId, CategoryId = 1, Score = r.Score, Segmentation = r.Segmentation, Bbox = r.Bbox }).ToList();
        return (g, d);
    }

    /// <summary>One ground-truth instance of a cell.</summary>
    struct Gt
    {
        public long Id; public double Area; public bool Crowd; public Rle? Mask; public double[] Box;
    }

    /// <summary>One detection of a cell.</summary>
    struct Dt
    {
        public double Area; public Rle? Mask; public double[] Box;
    }

    /// <summary>Per image × category evaluation (pycocotools evaluateImg for all area ranges at maxDet = max(maxDets)).</summary>
    sealed class Cell
    {
        /// <summary>Detection scores sorted descending, length D.</summary>
        public required double[] Scores;
        /// <summary>[a·D + d]: bit t set where pycocotools' dtMatches[t, d] != 0.</summary>
        public required uint[] Matched;
        /// <summary>[a·D + d]: bit t set where pycocotools' dtIgnore[t, d].</summary>
        public required uint[] Ignored;
        /// <summary>[a]: non-ignored gt count.</summary>
        public required int[] NumGt;
        public int GtCount;

        /// <summary>Bits of area range <paramref name="a"/> as pycocotools' [T, D] row-major boolean array.</summary>
        public bool[] Unpack(uint[] bits, int a, int thresholds)
        {
            int D = Scores.Length;
            var flags = new bool[thresholds * D];
            for (int t = 0; t < thresholds; t++)
                for (int d = 0; d < D; d++) flags[t * D + d] = (bits[a * D + d] & (1u << t)) != 0;
            return flags;
        }
    }

    /// <summary>Evaluates results against ground truth exactly as pycocotools COCOeval(gt, gt.loadRes(dt), iouType) evaluate/accumulate/summarize.</summary>
    public static CocoEvalResult Evaluate(CocoDataset gt, IReadOnlyList<CocoResult> results, CocoIouType iouType, CocoEvalParams? parameters = null, int maxDegreeOfParallelism = -1, bool keepPerImage = false,
        string gtName = "ground truth", string resultsName = "results")
    {
        var p = parameters ?? new CocoEvalParams();
        var maxDets = p.MaxDets.OrderBy(x => x).ToArray();
        long[] imgIds = gt.Images.Select(i => i.Id).Distinct().OrderBy(x => x).ToArray();
        long[] catIds = gt.Categories.Select(c => c.Id).Distinct().OrderBy(x => x).ToArray();
        var imgIndex = new Dictionary<long, int>(imgIds.Length);
        for (int i = 0; i < imgIds.Length; i++) imgIndex[imgIds[i]] = i;
        var catIndex = new Dictionary<long, int>(catIds.Length);
        for (int k = 0; k < catIds.Length; k++) catIndex[catIds[k]] = k;
        int I = imgIds.Length, K = catIds.Length;

        // ---- the cell (category k, image i) of each gt annotation and result: key k·I + i, or −1 where pycocotools skips it
        var gtKeys = new long[gt.Annotations.Count];
        for (int g = 0; g < gtKeys.Length; g++)
        {
            var a = gt.Annotations[g];
            gtKeys[g] = catIndex.TryGetValue(a.CategoryId, out int k) && imgIndex.TryGetValue(a.ImageId, out int i) ? (long)k * I + i : -1;
        }
        // results as loadRes: the first result decides "box results" (area = w*h) vs "mask results" (area = RLE area)
        bool boxMode = results.Count > 0 && results[0].Bbox != null;
        var dtKeys = new long[results.Count];
        for (int j = 0; j < results.Count; j++)
        {
            var r = results[j];
            if (!imgIndex.TryGetValue(r.ImageId, out int i))
                throw new DiffEggException($"{resultsName}: result [{j}]: field 'image_id': image id {r.ImageId} is not in the ground truth");
            if (boxMode && r.Bbox == null)
                throw new DiffEggException($"{resultsName}: result [{j}]: field 'bbox': missing (the first result has a bbox, so, as pycocotools loadRes, all results are read as box results)");
            if (!boxMode && r.Segmentation == null)
                throw new DiffEggException($"{resultsName}: result [{j}]: field 'segmentation': missing (the first result has no bbox, so, as pycocotools loadRes, all results are read as mask results)");
            dtKeys[j] = catIndex.TryGetValue(r.CategoryId, out int k) ? (long)k * I + i : -1; // pycocotools only evaluates gt categories
        }
        var keySet = new HashSet<long>();
        foreach (long key in gtKeys) if (key >= 0) keySet.Add(key);
        foreach (long key in dtKeys) if (key >= 0) keySet.Add(key);
        var keys = keySet.ToArray();
        Array.Sort(keys);
        var cellIndex = new Dictionary<long, int>(keys.Length);
        for (int c = 0; c < keys.Length; c++) cellIndex[keys[c]] = c;
        // members of each cell in file order (as pycocotools' imgToAnns and its results list): cell c owns order[start[c] .. start[c + 1])
        var (gtStart, gtOrder) = GroupByCell(gtKeys, cellIndex, keys.Length);
        var (dtStart, dtOrder) = GroupByCell(dtKeys, cellIndex, keys.Length);

        int T = p.IouThrs.Length, R = p.RecThrs.Length, A = p.AreaRng.Length, M = maxDets.Length;
        if (T > 32) throw new ArgumentException("at most 32 IoU thresholds");
        var cells = new Cell?[keys.Length];
        var imagesById = new Dictionary<long, CocoImage>();
        foreach (var im in gt.Images) imagesById.TryAdd(im.Id, im);
        var po = new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism };
        Exception? firstError = null;
        Parallel.For(0, keys.Length, po, (c, state) =>
        {
            try
            {
                var img = imagesById[imgIds[(int)(keys[c] % I)]];
                cells[c] = EvaluateCell(img, gt.Annotations, gtOrder.AsSpan(gtStart[c], gtStart[c + 1] - gtStart[c]),
                    results, dtOrder.AsSpan(dtStart[c], dtStart[c + 1] - dtStart[c]), p, maxDets, iouType, boxMode, gtName, resultsName);
            }
            catch (Exception e)   // any exception stops the parallel loop; rethrown unchanged below (a DiffEggException is the user's, anything else a bug)
            {
                Interlocked.CompareExchange(ref firstError, e, null);
                state.Stop();
            }
        });
        if (firstError != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(firstError).Throw();

        // ---- accumulate
        var precision = new double[T * R * K * A * M];
        var recall = new double[T * K * A * M];
        Array.Fill(precision, -1.0);
        Array.Fill(recall, -1.0);
        // cells grouped by category, image order (keys are sorted by k then i)
        var catStart = new int[K + 1];
        foreach (long key in keys) catStart[(int)(key / I) + 1]++;
        for (int k = 0; k < K; k++) catStart[k + 1] += catStart[k];

        Parallel.For(0, K, po, k =>
        {
            int first = catStart[k], end = catStart[k + 1];
            if (first == end) return;
            // all detections at the largest maxDet, concatenated in image order, stable-sorted by descending score
            // (the order of any maxDet subset is the same subsequence, so one sort serves every maxDet)
            int total = 0;
            for (int c = first; c < end; c++) total += cells[c]!.Scores.Length;
            var byScore = new (double NegScore, int Position)[total];
            var cellOf = new int[total];
            var idxIn = new int[total];
            int n = 0;
            for (int c = first; c < end; c++)
            {
                var scores = cells[c]!.Scores;
                for (int d = 0; d < scores.Length; d++) { byScore[n] = (-scores[d], n); cellOf[n] = c; idxIn[n] = d; n++; }
            }
            byScore.AsSpan().Sort(new NegScoreThenPosition()); // np.argsort(-scores, kind='mergesort'): ties keep their position
            var sIdx = new int[total];
            var sCell = new int[total];
            for (int x = 0; x < total; x++) { sIdx[x] = idxIn[byScore[x].Position]; sCell[x] = cellOf[byScore[x].Position]; }
            var matchedBits = new uint[total];
            var ignoredBits = new uint[total];
            var tpRuns = new TruePositive[total];
            for (int a = 0; a < A; a++)
            {
                int npig = 0;
                for (int c = first; c < end; c++) npig += cells[c]!.NumGt[a];
                if (npig == 0) continue;
                for (int x = 0; x < total; x++)
                {
                    var cell = cells[sCell[x]]!;
                    int at = a * cell.Scores.Length + sIdx[x];
                    matchedBits[x] = cell.Matched[at];
                    ignoredBits[x] = cell.Ignored[at];
                }
                for (int m = 0; m < M; m++)
                {
                    int maxDet = maxDets[m];
                    for (int t = 0; t < T; t++)
                        AccumulateOne(sIdx, matchedBits, ignoredBits, 1u << t, maxDet, npig, p.RecThrs, tpRuns,
                            out recall[((t * K + k) * A + a) * M + m], precision, ((t * R * K + k) * A + a) * M + m, K * A * M);
                }
            }
        });

        var result = new CocoEvalResult
        {
            Params = p, IouType = iouType, CatIds = catIds, Precision = precision, Recall = recall,
            Stats = Summarize(p, maxDets, K, precision, recall),
            PerImage = keepPerImage
                ? keys.SelectMany((key, c) => Enumerable.Range(0, A).Select(a => new CocoImageEval(imgIds[key % I], catIds[key / I], a,
                    cells[c]!.Scores, cells[c]!.Unpack(cells[c]!.Matched, a, T), cells[c]!.Unpack(cells[c]!.Ignored, a, T), cells[c]!.GtCount, cells[c]!.NumGt[a]))).ToList()
                : null,
        };
        return result;
    }

    /// <summary>Items grouped by cell (a counting sort, stable): cell c owns order[start[c] .. start[c + 1]); key −1 belongs to no cell.</summary>
    static (int[] Start, int[] Order) GroupByCell(long[] itemKeys, Dictionary<long, int> cellIndex, int cellCount)
    {
        var cellOfItem = new int[itemKeys.Length];
        var start = new int[cellCount + 1];
        for (int j = 0; j < itemKeys.Length; j++)
        {
            cellOfItem[j] = itemKeys[j] >= 0 ? cellIndex[itemKeys[j]] : -1;
            if (cellOfItem[j] >= 0) start[cellOfItem[j] + 1]++;
        }
        for (int c = 0; c < cellCount; c++) start[c + 1] += start[c];
        var order = new int[start[cellCount]];
        var next = start[..cellCount];
        for (int j = 0; j < itemKeys.Length; j++)
            if (cellOfItem[j] >= 0) order[next[cellOfItem[j]]++] = j;
        return (start, order);
    }

    /// <summary>Orders (−score, position) pairs: by −score ascending, ties by position (a stable sort by descending score).</summary>
    struct NegScoreThenPosition : IComparer<(double NegScore, int Position)>
    {
        public readonly int Compare((double NegScore, int Position) u, (double NegScore, int Position) v)
        {
            int c = u.NegScore.CompareTo(v.NegScore);
            return c != 0 ? c : u.Position.CompareTo(v.Position);
        }
    }

    /// <summary>A position of the score-sorted detections where the true-positive count grew, with the counts there.</summary>
    struct TruePositive
    {
        public double Tp, Fp;
        public double Precision;
    }

    /// <summary>
    /// pycocotools accumulate() for one IoU threshold (bit <paramref name="bit"/>), area range and maxDet: tp/fp cumulative sums as floats,
    /// rc = tp/npig, pr = tp/(fp+tp+spacing(1)), right-to-left envelope of pr, searchsorted(rc, recThrs, 'left').
    /// The result is the same to the bit, but pr is only computed where tp grows: elsewhere pr does not grow (fp grows or nothing changes),
    /// so the envelope at any position is the largest pr at the tp-growth positions from there on, and rc only changes there.
    /// </summary>
    static void AccumulateOne(int[] sIdx, uint[] matchedBits, uint[] ignoredBits, uint bit, int maxDet, int npig, double[] recThrs, TruePositive[] tpRuns,
        out double recall, double[] precision, int precisionAt, int precisionStride)
    {
        int tp = 0, fp = 0, nd = 0, runs = 0;
        for (int x = 0; x < sIdx.Length; x++)
        {
            if (sIdx[x] >= maxDet) continue;
            nd++;
            if ((ignoredBits[x] & bit) != 0) continue;
            if ((matchedBits[x] & bit) == 0) { fp++; continue; }
            tp++;
            tpRuns[runs++] = new TruePositive { Tp = tp, Fp = fp };
        }
        recall = nd > 0 ? (double)tp / npig : 0;
        // envelope: the largest pr at this tp-growth position or a later one
        double best = 0;
        for (int u = runs - 1; u >= 0; u--)
        {
            ref var run = ref tpRuns[u];
            double pr = run.Tp / (run.Fp + run.Tp + Eps);
            if (pr > best) best = pr;
            run.Precision = best;
        }
        // searchsorted 'left': the first position whose rc >= the threshold. rc is 0 before the first tp-growth position (where pr is
        // 0 and the envelope is that of the first run), so a threshold <= 0 is met at position 0; an index past the end leaves this and
        // all later thresholds at 0.
        int next = 0;
        for (int ri = 0; ri < recThrs.Length; ri++)
        {
            double q;
            if (nd == 0) q = 0;
            else if (recThrs[ri] <= 0) q = runs > 0 ? tpRuns[0].Precision : 0;
            else
            {
                while (next < runs && tpRuns[next].Tp / npig < recThrs[ri]) next++;
                q = next < runs ? tpRuns[next].Precision : 0;
            }
            precision[precisionAt + ri * precisionStride] = q;
        }
    }

    /// <summary>np.spacing(1).</summary>
    const double Eps = 2.220446049250313e-16;

    /// <summary>
    /// One cell: the gt annotations <paramref name="gtMembers"/> (indices into <paramref name="allGt"/>, file order) and the results
    /// <paramref name="dtMembers"/> (indices into <paramref name="results"/>, file order) of one image and category.
    /// </summary>
    static Cell? EvaluateCell(CocoImage img, IReadOnlyList<CocoAnnotation> allGt, ReadOnlySpan<int> gtMembers, IReadOnlyList<CocoResult> results, ReadOnlySpan<int> dtMembers,
        CocoEvalParams p, int[] maxDets, CocoIouType iouType, bool boxMode, string gtName, string resultsName)
    {
        int G0 = gtMembers.Length, D0 = dtMembers.Length;
        if (G0 == 0 && D0 == 0) return null;
        int h = img.Height, w = img.Width;
        var gts = new Gt[G0];
        for (int g = 0; g < G0; g++)
        {
            var a = allGt[gtMembers[g]];
            ref var gg = ref gts[g];
            gg.Id = a.Id; gg.Area = a.Area; gg.Crowd = a.IsCrowd != 0;
            if (iouType == CocoIouType.Segm)
            {
                if (a.Segmentation == null) throw new DiffEggException($"{gtName}: annotation id {a.Id}: field 'segmentation': missing (needed for --iou-type segm)");
                try { gg.Mask = a.Segmentation.ToRle(h, w); }
                catch (ArgumentException e) { throw new DiffEggException($"{gtName}: annotation id {a.Id}: field 'segmentation': {e.Message}"); }   // Rle refuses malformed counts or sizes of the file's segmentation
                gg.Box = gg.Mask.ToBbox();
            }
            else gg.Box = a.Bbox ?? throw new DiffEggException($"{gtName}: annotation id {a.Id}: field 'bbox': missing (needed for --iou-type bbox)");
        }
        // detections sorted by score, descending, stable (np.argsort(-score, kind='mergesort')), cut at max(maxDets)
        var dOrder = new (double NegScore, int Position)[D0];
        for (int d = 0; d < D0; d++) dOrder[d] = (-results[dtMembers[d]].Score, d);
        if (D0 > 1) dOrder.AsSpan().Sort(new NegScoreThenPosition());
        int D = Math.Min(D0, maxDets[^1]);
        var dts = new Dt[D];
        var scores = new double[D];
        for (int d = 0; d < D; d++)
        {
            int index = dtMembers[dOrder[d].Position];
            var r = results[index];
            ref var dd = ref dts[d];
            scores[d] = r.Score;
            Rle? mask = null;
            if (iouType == CocoIouType.Segm || !boxMode)
            {
                var seg = r.Segmentation ?? CocoSegmentation.FromPolygons(new[] { BoxPolygon(r.Bbox!) });
                try { mask = seg.ToRle(h, w); }
                catch (ArgumentException e) { throw new DiffEggException($"{resultsName}: result [{index}]: field 'segmentation': {e.Message}"); }   // Rle refuses malformed counts or sizes of the file's segmentation
            }
            dd.Area = boxMode ? r.Bbox![2] * r.Bbox[3] : mask!.Area;
            if (iouType == CocoIouType.Segm) { dd.Mask = mask; dd.Box = mask!.ToBbox(); }
            else dd.Box = r.Bbox ?? mask!.ToBbox();
        }

        // IoU [d, g] (pycocotools maskUtils.iou: box overlap first, then RLE)
        var ious = new double[D * G0];
        for (int d = 0; d < D; d++)
            for (int g = 0; g < G0; g++)
            {
                double bi = Rle.BboxIou(dts[d].Box, gts[g].Box, gts[g].Crowd);
                ious[d * G0 + g] = iouType == CocoIouType.Bbox || bi <= 0 ? bi : Rle.Iou(dts[d].Mask!, gts[g].Mask!, gts[g].Crowd);
            }

        int T = p.IouThrs.Length, A = p.AreaRng.Length;
        var cell = new Cell { Scores = scores, Matched = new uint[A * D], Ignored = new uint[A * D], NumGt = new int[A], GtCount = G0 };
        var gIg = new bool[G0];
        var gOrder = new int[G0];
        var gtm = new bool[G0];
        uint allThresholds = T == 32 ? uint.MaxValue : (1u << T) - 1;
        for (int a = 0; a < A; a++)
        {
            var (lo, hi) = p.AreaRng[a];
            // gt sorted with ignored last (stable)
            int n = 0;
            for (int g = 0; g < G0; g++) if (!(gts[g].Crowd || gts[g].Area < lo || gts[g].Area > hi)) gOrder[n++] = g;
            cell.NumGt[a] = n;
            for (int g = 0; g < G0; g++) if (gts[g].Crowd || gts[g].Area < lo || gts[g].Area > hi) gOrder[n++] = g;
            for (int gi = 0; gi < G0; gi++) gIg[gi] = gi >= cell.NumGt[a];
            var matched = cell.Matched.AsSpan(a * D, D);
            var ignored = cell.Ignored.AsSpan(a * D, D);
            if (D > 0 && G0 > 0)
                for (int t = 0; t < T; t++)
                {
                    uint bit = 1u << t;
                    Array.Clear(gtm);
                    for (int d = 0; d < D; d++)
                    {
                        double iou = Math.Min(p.IouThrs[t], 1 - 1e-10);
                        int m = -1;
                        for (int gi = 0; gi < G0; gi++)
                        {
                            int g = gOrder[gi];
                            if (gtm[gi] && !gts[g].Crowd) continue;
                            if (m > -1 && !gIg[m] && gIg[gi]) break;
                            double v = ious[d * G0 + g];
                            if (v < iou) continue;
                            iou = v;
                            m = gi;
                        }
                        if (m == -1) continue;
                        if (gIg[m]) ignored[d] |= bit;
                        if (gts[gOrder[m]].Id != 0) matched[d] |= bit; // pycocotools stores the gt id; id 0 reads as "unmatched"
                        gtm[m] = true;
                    }
                }
            // unmatched detections outside the area range are ignored
            for (int d = 0; d < D; d++)
                if (dts[d].Area < lo || dts[d].Area > hi) ignored[d] |= ~matched[d] & allThresholds;
        }
        return cell;
    }

    static double[] BoxPolygon(double[] bb)
    {
        double x1 = bb[0], x2 = bb[0] + bb[2], y1 = bb[1], y2 = bb[1] + bb[3];
        return new[] { x1, y1, x1, y2, x2, y2, x2, y1 };
    }

    /// <summary>pycocotools summarize(): mean over entries &gt; −1 (numpy pairwise sum), −1 when none.</summary>
    static double[] Summarize(CocoEvalParams p, int[] maxDets, int K, double[] precision, double[] recall)
    {
        int T = p.IouThrs.Length, R = p.RecThrs.Length, A = p.AreaRng.Length, M = maxDets.Length;
        double S(bool ap, double? iouThr, string areaLbl, int maxDet)
        {
            int[] aind = Enumerable.Range(0, A).Where(i => p.AreaRngLbl[i] == areaLbl).ToArray();
            int[] mind = Enumerable.Range(0, M).Where(i => maxDets[i] == maxDet).ToArray();
            int[] tind = iouThr is double thr ? Enumerable.Range(0, T).Where(i => p.IouThrs[i] == thr).ToArray() : Enumerable.Range(0, T).ToArray();
            var vals = new List<double>();
            foreach (int t in tind)
                if (ap)
                {
                    for (int r = 0; r < R; r++)
                        for (int k = 0; k < K; k++)
                            foreach (int a in aind)
                                foreach (int m in mind)
                                {
                                    double v = precision[(((t * R + r) * K + k) * A + a) * M + m];
                                    if (v > -1) vals.Add(v);
                                }
                }
                else
                {
                    for (int k = 0; k < K; k++)
                        foreach (int a in aind)
                            foreach (int m in mind)
                            {
                                double v = recall[((t * K + k) * A + a) * M + m];
                                if (v > -1) vals.Add(v);
                            }
                }
            return vals.Count == 0 ? -1 : PyNum.Mean(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(vals));
        }
        int m2 = maxDets.Length > 2 ? maxDets[2] : maxDets[^1];
        return new[]
        {
            S(true, null, "all", maxDets[^1]),
            S(true, .5, "all", m2),
            S(true, .75, "all", m2),
            S(true, null, "small", m2),
            S(true, null, "medium", m2),
            S(true, null, "large", m2),
            S(false, null, "all", maxDets[0]),
            S(false, null, "all", maxDets.Length > 1 ? maxDets[1] : maxDets[0]),
            S(false, null, "all", m2),
            S(false, null, "small", m2),
            S(false, null, "medium", m2),
            S(false, null, "large", m2),
        };
    }
}
