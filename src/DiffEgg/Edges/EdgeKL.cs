using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Edges;

/// <summary>Row divergence used by <see cref="EdgeKL"/> (Eq 6 uses KL; JSD, L2 and cosine are the Table F alternatives).</summary>
public enum EdgeMetric
{
    /// <summary>KL_ε(p‖q) = Σ_k p_k·(ln(p_k+ε) − ln(q_k+ε)) (nats).</summary>
    KL,
    /// <summary>JSD_ε(p,q) = ½KL_ε(p‖m) + ½KL_ε(q‖m), m = (p+q)/2 (nats, ≤ ln 2).</summary>
    JSD,
    /// <summary>Euclidean distance ‖p − q‖₂.</summary>
    L2,
    /// <summary>Cosine distance 1 − p·q / max(‖p‖‖q‖, ε).</summary>
    Cosine,
}

/// <summary>
/// EdgeKL (DiffEGG Eq 6): E(i,j) = D(S[i+1,j] ‖ S[i−1,j]) + D(S[i,j+1] ‖ S[i,j−1]), where S[i,j] is the self-attention
/// row (a distribution over the H·W keys) of pixel (i,j).
/// <para>
/// Border rule (replicate padding): a neighbour outside the grid is replaced by the pixel itself, so on the first row the
/// vertical term is D(S[1,j] ‖ S[0,j]) and on the last row D(S[H−1,j] ‖ S[H−2,j]) (one-sided differences); the same
/// for columns. A grid of height (width) 1 has a zero vertical (horizontal) term.
/// </para>
/// <para>ε: logarithms are taken of p + ε (no clamping, no renormalisation), so KL_ε(p‖p) = 0 exactly and a zero
/// probability costs ln(ε⁻¹)-bounded terms instead of infinity. Default ε = 1e-8.</para>
/// </summary>
public static class EdgeKL
{
    /// <summary>Rows per chunk × H·W ≈ this many elements: bounds the temporaries of <see cref="Compute"/>.</summary>
    const long ChunkElements = 1L << 22;

    /// <summary>Edge map of Eq 6 from an accumulated self-attention map <c>[H·W, H·W]</c> or <c>[1, H·W, H·W]</c>; returns <c>[H, W]</c> in the map's dtype.</summary>
    public static Tensor Compute(Tensor map, int height, int width, EdgeMetric metric = EdgeMetric.KL, double eps = 1e-8)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (height <= 0 || width <= 0)
            throw new ArgumentException($"map {TensorChecks.Shape(map)}: height {height} and width {width} must be positive", nameof(height));
        if (!(eps >= 0)) throw new ArgumentException($"eps = {eps} must be ≥ 0", nameof(eps));
        long hw = (long)height * width;
        bool ok = (map.dim() == 2 && map.shape[0] == hw && map.shape[1] == hw)
               || (map.dim() == 3 && map.shape[0] == 1 && map.shape[1] == hw && map.shape[2] == hw);
        if (!ok)
            throw new ArgumentException($"map {TensorChecks.Shape(map)}: expected [H·W, H·W] or [1, H·W, H·W] with H·W = {height}·{width} = {hw}", nameof(map));
        TensorChecks.RequireRowDistributions(map, "map");

        using var scope = NewDisposeScope();
        var S = map.reshape(hw, hw);
        var dev = S.device;
        // Pixel index grid and its replicate-padded neighbours (flat index i·W + j).
        var idx = arange(hw, dtype: ScalarType.Int64, device: dev).reshape(height, width);
        var rows = arange(height, dtype: ScalarType.Int64, device: dev);
        var cols = arange(width, dtype: ScalarType.Int64, device: dev);
        var down = idx.index_select(0, (rows + 1).clamp_max(height - 1)).flatten();
        var up = idx.index_select(0, (rows - 1).clamp_min(0)).flatten();
        var right = idx.index_select(1, (cols + 1).clamp_max(width - 1)).flatten();
        var left = idx.index_select(1, (cols - 1).clamp_min(0)).flatten();
        var pIdx = cat(new[] { down, right });  // first argument of D
        var qIdx = cat(new[] { up, left });     // second argument of D

        long n = 2 * hw;
        long chunk = Math.Max(1, ChunkElements / hw);
        var parts = new List<Tensor>();
        for (long s = 0; s < n; s += chunk)
        {
            using var inner = NewDisposeScope();
            long len = Math.Min(chunk, n - s);
            var p = S.index_select(0, pIdx.narrow(0, s, len));
            var q = S.index_select(0, qIdx.narrow(0, s, len));
            parts.Add(Divergence(p, q, metric, eps).MoveToOuterDisposeScope());
        }
        var d = cat(parts).reshape(2, height, width);
        return d.sum(0L).MoveToOuterDisposeScope();
    }

    /// <summary>Row-wise divergence D(p‖q) over the last dimension of two same-shaped tensors (the D of Eq 6 / Table F); no validation.</summary>
    public static Tensor Divergence(Tensor p, Tensor q, EdgeMetric metric = EdgeMetric.KL, double eps = 1e-8)
    {
        using var scope = NewDisposeScope();
        Tensor r = metric switch
        {
            EdgeMetric.KL => (p * ((p + eps).log_() - (q + eps).log_())).sum(-1),
            EdgeMetric.JSD => Jsd(p, q, eps),
            EdgeMetric.L2 => (p - q).pow_(2).sum(-1).sqrt_(),
            EdgeMetric.Cosine => 1.0 - (p * q).sum(-1) / (p.norm(-1, false) * q.norm(-1, false)).clamp_min(eps),
            _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "unknown EdgeMetric"),
        };
        return r.MoveToOuterDisposeScope();
    }

    /// <summary>Mean over rows of D(p‖q) for two <c>[N, K]</c> tensors, in row chunks so temporaries stay small (used by PeakKL, Alg 1).</summary>
    internal static double MeanRowDivergence(Tensor p, Tensor q, EdgeMetric metric, double eps)
    {
        long n = p.shape[0], k = p.shape[1];
        long chunk = Math.Max(1, ChunkElements / Math.Max(1, k));
        double total = 0;
        for (long s = 0; s < n; s += chunk)
        {
            using var scope = NewDisposeScope();
            long len = Math.Min(chunk, n - s);
            total += Divergence(p.narrow(0, s, len), q.narrow(0, s, len), metric, eps).sum(ScalarType.Float64).item<double>();
        }
        return total / n;
    }

    static Tensor Jsd(Tensor p, Tensor q, double eps)
    {
        var logM = ((p + q).mul_(0.5).add_(eps)).log_();
        var a = (p * ((p + eps).log_() - logM)).sum(-1);
        var b = (q * ((q + eps).log_() - logM)).sum(-1);
        return (a + b).mul_(0.5);
    }
}
