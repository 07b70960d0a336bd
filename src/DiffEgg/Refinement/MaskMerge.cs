using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Refinement;

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
