using System.Text;
using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Evaluation;

/// <summary>PQ, SQ, RQ and the number of categories averaged.</summary>
public sealed record PqValues(double Pq, double Sq, double Rq, int N);

/// <summary>Result of panoptic evaluation (panopticapi pq_compute).</summary>
public sealed class PanopticEvalResult
{
    public required PqValues All { get; init; }
    public required PqValues Things { get; init; }
    public required PqValues Stuff { get; init; }
    /// <summary>Per category (gt JSON order): pq, sq, rq (0 for a category with no tp, fp or fn, as panopticapi).</summary>
    public required IReadOnlyList<(long CategoryId, double Pq, double Sq, double Rq)> PerClass { get; init; }

    /// <summary>The PQ/SQ/RQ/N table exactly as panopticapi prints it (NaN where no category of a group occurs).</summary>
    public string Table()
    {
        var sb = new StringBuilder();
        sb.Append(new string(' ', 10)).Append("| ").Append("PQ".PadLeft(5)).Append("  ").Append("SQ".PadLeft(5)).Append("  ")
          .Append("RQ".PadLeft(5)).Append(' ').Append("N".PadLeft(5)).Append('\n');
        sb.Append(new string('-', 10 + 7 * 4)).Append('\n');
        foreach (var (name, v) in new[] { ("All", All), ("Things", Things), ("Stuff", Stuff) })
            sb.Append(name.PadRight(10)).Append("| ").Append(PyNum.Fixed(100 * v.Pq, 1).PadLeft(5)).Append("  ")
              .Append(PyNum.Fixed(100 * v.Sq, 1).PadLeft(5)).Append("  ").Append(PyNum.Fixed(100 * v.Rq, 1).PadLeft(5))
              .Append(' ').Append(v.N.ToString().PadLeft(5)).Append('\n');
        return sb.ToString();
    }
}

/// <summary>
/// Panoptic quality exactly as panopticapi pq_compute: a gt and a predicted segment of one category match when
/// IoU &gt; 0.5, the union leaving out the prediction's void pixels; crowd gt segments never match, and an unmatched
/// prediction more than half inside void + its category's crowd region is not a false positive.
/// </summary>
public static class PanopticEvaluator
{
    sealed class ImageStats
    {
        public readonly List<(long Cat, double Iou)> Matches = new();
        public readonly Dictionary<long, int> Fn = new();
        public readonly Dictionary<long, int> Fp = new();
    }

    /// <summary>Computes PQ/SQ/RQ (panopticapi pq_compute). Files are named in errors by <paramref name="gtJsonPath"/>/<paramref name="predJsonPath"/> and the PNG paths.</summary>
    public static PanopticEvalResult Evaluate(PanopticDataset gt, string gtDir, PanopticDataset pred, string predDir,
        string gtJsonPath = "ground truth JSON", string predJsonPath = "prediction JSON", int maxDegreeOfParallelism = -1)
    {
        if (!Directory.Exists(gtDir)) throw new DiffEggException($"{gtDir}: folder with ground truth segmentations doesn't exist");
        if (!Directory.Exists(predDir)) throw new DiffEggException($"{predDir}: folder with predicted segmentations doesn't exist");
        var categories = new Dictionary<long, CocoCategory>();
        foreach (var c in gt.Categories) categories.TryAdd(c.Id, c);
        var predByImage = new Dictionary<long, PanopticAnnotation>();
        foreach (var a in pred.Annotations) predByImage[a.ImageId] = a;
        var imageSize = new Dictionary<long, CocoImage>();
        foreach (var im in gt.Images) imageSize.TryAdd(im.Id, im);
        var pairs = new (PanopticAnnotation G, PanopticAnnotation P)[gt.Annotations.Count];
        for (int i = 0; i < pairs.Length; i++)
        {
            var g = gt.Annotations[i];
            if (!predByImage.TryGetValue(g.ImageId, out var p))
                throw new DiffEggException($"{predJsonPath}: no prediction for the image with id {g.ImageId}");
            foreach (var s in g.Segments)
                if (!categories.ContainsKey(s.CategoryId))
                    throw new DiffEggException($"{gtJsonPath}: annotations[{i}] (image_id {g.ImageId}) segment id {s.Id}: field 'category_id': unknown category id {s.CategoryId}");
            pairs[i] = (g, p);
        }

        var stats = new ImageStats[pairs.Length];
        Exception? error = null;
        Parallel.For(0, pairs.Length, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, (i, state) =>
        {
            try
            {
                imageSize.TryGetValue(pairs[i].G.ImageId, out var im);
                stats[i] = EvaluateImage(pairs[i].G, pairs[i].P, gtDir, predDir, categories, im, gtJsonPath, predJsonPath);
            }
            catch (Exception e)   // any exception stops the parallel loop; rethrown unchanged below (a DiffEggException is the user's, anything else a bug)
            {
                Interlocked.CompareExchange(ref error, e, null);
                state.Stop();
            }
        });
        if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();

        // reduce in image order (as panopticapi with a single worker)
        var iou = new Dictionary<long, double>();
        var tp = new Dictionary<long, int>();
        var fp = new Dictionary<long, int>();
        var fn = new Dictionary<long, int>();
        foreach (var s in stats)
        {
            foreach (var (cat, v) in s.Matches)
            {
                iou[cat] = iou.GetValueOrDefault(cat) + v;
                tp[cat] = tp.GetValueOrDefault(cat) + 1;
            }
            foreach (var (cat, v) in s.Fn) fn[cat] = fn.GetValueOrDefault(cat) + v;
            foreach (var (cat, v) in s.Fp) fp[cat] = fp.GetValueOrDefault(cat) + v;
        }

        (PqValues, List<(long, double, double, double)>) Average(bool? isThing)
        {
            double pq = 0, sq = 0, rq = 0;
            int n = 0;
            var per = new List<(long, double, double, double)>();
            foreach (var c in gt.Categories)
            {
                if (isThing is bool want && (c.IsThing == 1) != want) continue;
                double ciou = iou.GetValueOrDefault(c.Id);
                int ctp = tp.GetValueOrDefault(c.Id), cfp = fp.GetValueOrDefault(c.Id), cfn = fn.GetValueOrDefault(c.Id);
                if (ctp + cfp + cfn == 0) { per.Add((c.Id, 0.0, 0.0, 0.0)); continue; }
                n++;
                double denom = ctp + 0.5 * cfp + 0.5 * cfn;
                double pqc = ciou / denom, sqc = ctp != 0 ? ciou / ctp : 0, rqc = ctp / denom;
                per.Add((c.Id, pqc, sqc, rqc));
                pq += pqc; sq += sqc; rq += rqc;
            }
            return (new PqValues(pq / n, sq / n, rq / n, n), per);
        }
        var (all, perClass) = Average(null);
        return new PanopticEvalResult { All = all, Things = Average(true).Item1, Stuff = Average(false).Item1, PerClass = perClass };
    }

    static ImageStats EvaluateImage(PanopticAnnotation g, PanopticAnnotation p, string gtDir, string predDir,
        Dictionary<long, CocoCategory> categories, CocoImage? image, string gtJsonPath, string predJsonPath)
    {
        string gtPng = Path.Combine(gtDir, g.FileName), predPng = Path.Combine(predDir, p.FileName);
        int[] gtIds = PanopticFiles.ReadPng(gtPng, out int gw, out int gh);
        int[] predIds = PanopticFiles.ReadPng(predPng, out int pw, out int ph);
        if (image != null && (image.Width != gw || image.Height != gh))
            throw new DiffEggException($"{gtPng}: PNG is {gw}x{gh} but {gtJsonPath} gives image {g.ImageId} the size {image.Width}x{image.Height}");
        if (pw != gw || ph != gh)
            throw new DiffEggException($"{predPng}: PNG is {pw}x{ph} but the ground truth PNG {gtPng} is {gw}x{gh}");

        var gtSegs = new Dictionary<long, PanopticSegment>();
        foreach (var s in g.Segments) gtSegs[s.Id] = s;
        var predSegs = new Dictionary<long, PanopticSegment>();
        foreach (var s in p.Segments) predSegs[s.Id] = s;

        // ids -> compact indices (adjacent pixels mostly repeat, so a one-entry cache saves most lookups)
        static int[] Index(int[] map, List<int> ids)
        {
            var idx = new Dictionary<int, int>();
            var outIdx = new int[map.Length];
            int lastId = int.MinValue, last = -1;
            for (int i = 0; i < map.Length; i++)
            {
                int id = map[i];
                if (id != lastId)
                {
                    if (!idx.TryGetValue(id, out last)) { last = ids.Count; idx[id] = last; ids.Add(id); }
                    lastId = id;
                }
                outIdx[i] = last;
            }
            return outIdx;
        }
        var gIds = new List<int>();
        var pIds = new List<int>();
        int[] gIdx = Index(gtIds, gIds), pIdx = Index(predIds, pIds);
        int G = gIds.Count, P = pIds.Count;
        var counts = new long[(long)G * P];
        for (int i = 0; i < gIdx.Length; i++) counts[gIdx[i] * P + pIdx[i]]++;
        var predArea = new Dictionary<long, long>(P);
        for (int pj = 0; pj < P; pj++)
        {
            long a = 0;
            for (int gi = 0; gi < G; gi++) a += counts[gi * P + pj];
            predArea[pIds[pj]] = a;
        }

        // predicted segments + sanity checks (panopticapi order: labels ascending)
        foreach (var label in predArea.Keys.OrderBy(x => x))
        {
            if (!predSegs.TryGetValue(label, out var seg))
            {
                if (label == 0) continue;
                throw new DiffEggException($"{predPng}: in the image with id {g.ImageId} segment with id {label} is present in the PNG and not present in {predJsonPath}");
            }
            if (!categories.ContainsKey(seg.CategoryId))
                throw new DiffEggException($"{predJsonPath}: in the image with id {g.ImageId} segment with id {label} has unknown category_id {seg.CategoryId}");
        }
        var missing = p.Segments.Where(s => !predArea.ContainsKey(s.Id)).Select(s => s.Id).ToList();
        if (missing.Count > 0)
            throw new DiffEggException($"{predJsonPath}: in the image with id {g.ImageId} the segment ids [{string.Join(", ", missing)}] are present in the JSON and not present in the PNG {predPng}");

        // confusion: (gt id, pred id) -> intersection, iterated in ascending (gt id, pred id) order as np.unique
        var inter = new Dictionary<long, long>();
        var gOrder = Enumerable.Range(0, G).OrderBy(i => gIds[i]).ToArray();
        var pOrder = Enumerable.Range(0, P).OrderBy(j => pIds[j]).ToArray();
        var pairKeys = new List<long>();
        foreach (int gi in gOrder)
            foreach (int pj in pOrder)
            {
                long n = counts[gi * P + pj];
                if (n == 0) continue;
                long key = ((long)gIds[gi] << 24) | (uint)pIds[pj];
                inter[key] = n;
                pairKeys.Add(key);
            }
        long Pair(long gid, long pid) => inter.GetValueOrDefault((gid << 24) | pid);

        var st = new ImageStats();
        var gtMatched = new HashSet<long>();
        var predMatched = new HashSet<long>();
        foreach (long key in pairKeys)
        {
            long gl = key >> 24, pl = key & 0xFFFFFF, n = inter[key];
            if (!gtSegs.TryGetValue(gl, out var gs) || !predSegs.TryGetValue(pl, out var ps)) continue;
            if (gs.IsCrowd == 1) continue;
            if (gs.CategoryId != ps.CategoryId) continue;
            double gtArea = gs.Area ?? throw new DiffEggException($"{gtJsonPath}: image {g.ImageId} segment id {gl}: field 'area': missing");
            double union = predArea[pl] + gtArea - n - Pair(0, pl);
            double iou = n / union;
            if (iou > 0.5)
            {
                st.Matches.Add((gs.CategoryId, iou));
                gtMatched.Add(gl);
                predMatched.Add(pl);
            }
        }
        var crowdByCat = new Dictionary<long, long>();
        foreach (var s in g.Segments)
        {
            if (gtMatched.Contains(s.Id)) continue;
            if (s.IsCrowd == 1) { crowdByCat[s.CategoryId] = s.Id; continue; }
            st.Fn[s.CategoryId] = st.Fn.GetValueOrDefault(s.CategoryId) + 1;
        }
        foreach (var s in p.Segments)
        {
            if (predMatched.Contains(s.Id)) continue;
            long n = Pair(0, s.Id);
            if (crowdByCat.TryGetValue(s.CategoryId, out long crowdId)) n += Pair(crowdId, s.Id);
            if ((double)n / predArea[s.Id] > 0.5) continue;
            st.Fp[s.CategoryId] = st.Fp.GetValueOrDefault(s.CategoryId) + 1;
        }
        return st;
    }
}
