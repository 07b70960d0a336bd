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

    sealed class Gt
    {
        public long Id; public double Area; public bool Crowd; public Rle? Mask; public double[]? Box;
    }

    sealed class Dt
    {
        public double Score; public double Area; public Rle? Mask; public double[]? Box;
    }

    /// <summary>Per image × category evaluation (pycocotools evaluateImg for all area ranges at maxDet = max(maxDets)).</summary>
    sealed class Cell
    {
        public required double[] Scores;      // sorted descending, length D
        public required bool[][] Matched;     // [area][t*D + d]: dtMatches != 0
        public required bool[][] Ignored;     // [area][t*D + d]
        public required int[] NumGt;          // [area]: non-ignored gt count
        public int GtCount;
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

        // ---- gather ground truth per (category, image), file order within a cell (as pycocotools' imgToAnns)
        var gtCells = new Dictionary<long, List<CocoAnnotation>>();
        foreach (var a in gt.Annotations)
        {
            if (!catIndex.TryGetValue(a.CategoryId, out int k) || !imgIndex.TryGetValue(a.ImageId, out int i)) continue;
            long key = (long)k * I + i;
            if (!gtCells.TryGetValue(key, out var l)) gtCells[key] = l = new List<CocoAnnotation>();
            l.Add(a);
        }

        // ---- results as loadRes: the first result decides "box results" (area = w*h) vs "mask results" (area = RLE area)
        bool boxMode = results.Count > 0 && results[0].Bbox != null;
        var dtCells = new Dictionary<long, List<(int Index, CocoResult R)>>();
        for (int j = 0; j < results.Count; j++)
        {
            var r = results[j];
            if (!imgIndex.ContainsKey(r.ImageId))
                throw new DiffEggException($"{resultsName}: result [{j}]: field 'image_id': image id {r.ImageId} is not in the ground truth");
            if (boxMode && r.Bbox == null)
                throw new DiffEggException($"{resultsName}: result [{j}]: field 'bbox': missing (the first result has a bbox, so, as pycocotools loadRes, all results are read as box results)");
            if (!boxMode && r.Segmentation == null)
                throw new DiffEggException($"{resultsName}: result [{j}]: field 'segmentation': missing (the first result has no bbox, so, as pycocotools loadRes, all results are read as mask results)");
            if (!catIndex.TryGetValue(r.CategoryId, out int k)) continue; // pycocotools only evaluates gt categories
            long key = (long)k * I + imgIndex[r.ImageId];
            if (!dtCells.TryGetValue(key, out var l)) dtCells[key] = l = new List<(int, CocoResult)>();
            l.Add((j, r));
        }

        var keys = gtCells.Keys.Union(dtCells.Keys).OrderBy(x => x).ToArray();
        var cells = new Cell?[keys.Length];
        var imagesById = new Dictionary<long, CocoImage>();
        foreach (var im in gt.Images) imagesById.TryAdd(im.Id, im);
        var po = new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism };
        Exception? firstError = null;
        Parallel.For(0, keys.Length, po, (c, state) =>
        {
            try
            {
                long key = keys[c];
                int i = (int)(key % I);
                var img = imagesById[imgIds[i]];
                gtCells.TryGetValue(key, out var g);
                dtCells.TryGetValue(key, out var d);
                cells[c] = EvaluateCell(img, g, d, p, maxDets, iouType, boxMode, gtName, resultsName);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref firstError, e, null);
                state.Stop();
            }
        });
        if (firstError != null) throw firstError is DiffEggException ? firstError : new DiffEggException(firstError.Message, firstError);

        // ---- accumulate
        int T = p.IouThrs.Length, R = p.RecThrs.Length, A = p.AreaRng.Length, M = maxDets.Length;
        var precision = new double[T * R * K * A * M];
        var recall = new double[T * K * A * M];
        Array.Fill(precision, -1.0);
        Array.Fill(recall, -1.0);
        // cells grouped by category, image order (keys are sorted by k then i)
        var byCat = new List<int>[K];
        for (int k = 0; k < K; k++) byCat[k] = new List<int>();
        for (int c = 0; c < keys.Length; c++) byCat[(int)(keys[c] / I)].Add(c);

        if (T > 32) throw new ArgumentException("at most 32 IoU thresholds");
        Parallel.For(0, K, po, k =>
        {
            var list = byCat[k];
            if (list.Count == 0) return;
            // all detections at the largest maxDet, concatenated in image order, stable-sorted by descending score
            // (the order of any maxDet subset is the same subsequence, so one sort serves every maxDet)
            int total = 0;
            foreach (int c in list) total += Math.Min(cells[c]!.Scores.Length, maxDets[^1]);
            var cellOf = new int[total];
            var idxIn = new int[total];
            var score = new double[total];
            int n = 0;
            foreach (int c in list)
            {
                var cell = cells[c]!;
                int D = Math.Min(cell.Scores.Length, maxDets[^1]);
                for (int d = 0; d < D; d++) { cellOf[n] = c; idxIn[n] = d; score[n] = cell.Scores[d]; n++; }
            }
            var order = new int[total];
            for (int x = 0; x < total; x++) order[x] = x;
            var negScore = new double[total];
            for (int x = 0; x < total; x++) negScore[x] = -score[x];
            StableSortByKey(negScore, order);
            var sIdx = new int[total];
            for (int x = 0; x < total; x++) sIdx[x] = idxIn[order[x]];
            var matchedBits = new uint[total];
            var ignoredBits = new uint[total];
            var rc = new double[total];
            var pr = new double[total];
            for (int a = 0; a < A; a++)
            {
                int npig = 0;
                foreach (int c in list) npig += cells[c]!.NumGt[a];
                if (npig == 0) continue;
                for (int x = 0; x < total; x++)
                {
                    var cell = cells[cellOf[order[x]]]!;
                    int D = cell.Scores.Length, d = sIdx[x];
                    uint mb = 0, ib = 0;
                    var mt = cell.Matched[a];
                    var ig = cell.Ignored[a];
                    for (int t = 0; t < T; t++)
                    {
                        if (mt[t * D + d]) mb |= 1u << t;
                        if (ig[t * D + d]) ib |= 1u << t;
                    }
                    matchedBits[x] = mb;
                    ignoredBits[x] = ib;
                }
                for (int m = 0; m < M; m++)
                {
                    int maxDet = maxDets[m];
                    for (int t = 0; t < T; t++)
                    {
                        uint bit = 1u << t;
                        double tp = 0, fp = 0;
                        int nd = 0;
                        for (int x = 0; x < total; x++)
                        {
                            if (sIdx[x] >= maxDet) continue;
                            if ((ignoredBits[x] & bit) == 0) { if ((matchedBits[x] & bit) != 0) tp += 1; else fp += 1; }
                            rc[nd] = tp / npig;
                            pr[nd] = tp / (fp + tp + Eps);
                            nd++;
                        }
                        recall[((t * K + k) * A + a) * M + m] = nd > 0 ? rc[nd - 1] : 0;
                        for (int x = nd - 1; x > 0; x--) if (pr[x] > pr[x - 1]) pr[x - 1] = pr[x];
                        int pi = 0;
                        for (int ri = 0; ri < R; ri++)
                        {
                            while (pi < nd && rc[pi] < p.RecThrs[ri]) pi++;
                            // numpy searchsorted 'left'; an index past the end leaves this and all later thresholds at 0
                            precision[(((t * R + ri) * K + k) * A + a) * M + m] = pi < nd ? pr[pi] : 0.0;
                        }
                    }
                }
            }
        });

        var result = new CocoEvalResult
        {
            Params = p, IouType = iouType, CatIds = catIds, Precision = precision, Recall = recall,
            Stats = Summarize(p, maxDets, K, precision, recall),
            PerImage = keepPerImage
                ? keys.SelectMany((key, c) => Enumerable.Range(0, A).Select(a => new CocoImageEval(imgIds[key % I], catIds[key / I], a,
                    cells[c]!.Scores, cells[c]!.Matched[a], cells[c]!.Ignored[a], cells[c]!.GtCount, cells[c]!.NumGt[a]))).ToList()
                : null,
        };
        return result;
    }

    /// <summary>Stable sort of <paramref name="order"/> by <paramref name="key"/> ascending (np.argsort kind='mergesort'); ties keep their position.</summary>
    internal static void StableSortByKey(double[] key, int[] order)
    {
        var keys = new (double K, int I)[order.Length];
        for (int x = 0; x < order.Length; x++) keys[x] = (key[order[x]], order[x]);
        Array.Sort(keys, (u, v) => { int c = u.K.CompareTo(v.K); return c != 0 ? c : u.I.CompareTo(v.I); });
        for (int x = 0; x < order.Length; x++) order[x] = keys[x].I;
    }

    /// <summary>np.spacing(1).</summary>
    const double Eps = 2.220446049250313e-16;

    static Cell? EvaluateCell(CocoImage img, List<CocoAnnotation>? gtList, List<(int Index, CocoResult R)>? dtList, CocoEvalParams p, int[] maxDets, CocoIouType iouType, bool boxMode, string gtName, string resultsName)
    {
        int G0 = gtList?.Count ?? 0, D0 = dtList?.Count ?? 0;
        if (G0 == 0 && D0 == 0) return null;
        int h = img.Height, w = img.Width;
        var gts = new Gt[G0];
        for (int g = 0; g < G0; g++)
        {
            var a = gtList![g];
            var gg = new Gt { Id = a.Id, Area = a.Area, Crowd = a.IsCrowd != 0 };
            if (iouType == CocoIouType.Segm)
            {
                if (a.Segmentation == null) throw new DiffEggException($"{gtName}: annotation id {a.Id}: field 'segmentation': missing (needed for --iou-type segm)");
                try { gg.Mask = a.Segmentation.ToRle(h, w); }
                catch (ArgumentException e) { throw new DiffEggException($"{gtName}: annotation id {a.Id}: field 'segmentation': {e.Message}"); }
                gg.Box = gg.Mask.ToBbox();
            }
            else gg.Box = a.Bbox ?? throw new DiffEggException($"{gtName}: annotation id {a.Id}: field 'bbox': missing (needed for --iou-type bbox)");
            gts[g] = gg;
        }
        // detections sorted by score, descending, stable (np.argsort(-score, kind='mergesort')), cut at max(maxDets)
        var dOrder = Enumerable.Range(0, D0).ToArray();
        if (D0 > 1)
            Array.Sort(dOrder, (x, y) =>
            {
                int cmp = dtList![y].R.Score.CompareTo(dtList[x].R.Score);
                return cmp != 0 ? cmp : x.CompareTo(y);
            });
        int D = Math.Min(D0, maxDets[^1]);
        var dts = new Dt[D];
        for (int d = 0; d < D; d++)
        {
            var (index, r) = dtList![dOrder[d]];
            var dd = new Dt { Score = r.Score };
            Rle? mask = null;
            if (iouType == CocoIouType.Segm || !boxMode)
            {
                var seg = r.Segmentation ?? CocoSegmentation.FromPolygons(new[] { BoxPolygon(r.Bbox!) });
                try { mask = seg.ToRle(h, w); }
                catch (ArgumentException e) { throw new DiffEggException($"{resultsName}: result [{index}]: field 'segmentation': {e.Message}"); }
            }
            dd.Area = boxMode ? r.Bbox![2] * r.Bbox[3] : mask!.Area;
            if (iouType == CocoIouType.Segm) { dd.Mask = mask; dd.Box = mask!.ToBbox(); }
            else dd.Box = r.Bbox ?? mask!.ToBbox();
            dts[d] = dd;
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
        var cell = new Cell
        {
            Scores = dts.Select(x => x.Score).ToArray(),
            Matched = new bool[A][], Ignored = new bool[A][], NumGt = new int[A],
        };
        var gIg = new bool[G0];
        var gOrder = new int[G0];
        var gtm = new bool[G0];
        for (int a = 0; a < A; a++)
        {
            var (lo, hi) = p.AreaRng[a];
            // gt sorted with ignored last (stable)
            int n = 0;
            for (int g = 0; g < G0; g++) if (!(gts[g].Crowd || gts[g].Area < lo || gts[g].Area > hi)) gOrder[n++] = g;
            cell.NumGt[a] = n;
            for (int g = 0; g < G0; g++) if (gts[g].Crowd || gts[g].Area < lo || gts[g].Area > hi) gOrder[n++] = g;
            for (int gi = 0; gi < G0; gi++) gIg[gi] = gi >= cell.NumGt[a];
            var matched = new bool[T * D];
            var ignored = new bool[T * D];
            if (D > 0 && G0 > 0)
                for (int t = 0; t < T; t++)
                {
                    Array.Clear(gtm);
                    for (int d = 0; d < D; d++)
                    {
                        double iou = Math.Min(p.IouThrs[t], 1 - 1e-10);
                        int m = -1;
                        for (int gi = 0; gi < G0; gi++)
                        {
                            var gg = gts[gOrder[gi]];
                            if (gtm[gi] && !gg.Crowd) continue;
                            if (m > -1 && !gIg[m] && gIg[gi]) break;
                            double v = ious[d * G0 + gOrder[gi]];
                            if (v < iou) continue;
                            iou = v;
                            m = gi;
                        }
                        if (m == -1) continue;
                        ignored[t * D + d] = gIg[m];
                        matched[t * D + d] = gts[gOrder[m]].Id != 0; // pycocotools stores the gt id; id 0 reads as "unmatched"
                        gtm[m] = true;
                    }
                }
            for (int d = 0; d < D; d++)
            {
                bool outside = dts[d].Area < lo || dts[d].Area > hi;
                if (!outside) continue;
                for (int t = 0; t < T; t++) if (!matched[t * D + d]) ignored[t * D + d] = true;
            }
            cell.Matched[a] = matched;
            cell.Ignored[a] = ignored;
        }
        cell.GtCount = G0;
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
