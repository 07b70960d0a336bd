using DiffEgg.Attention;
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
    /// <summary>Default budget for the temporaries of one block of grid rows (256 MiB): <see cref="Compute(IAttentionRows, EdgeMetric, double, long)"/> and PeakKL plan their blocks with it.</summary>
    public const long DefaultChunkBytes = 256L << 20;

    /// <summary>Edge map of Eq 6 from an accumulated self-attention map <c>[H·W, H·W]</c> or <c>[1, H·W, H·W]</c>; returns <c>[H, W]</c> in the map's dtype.</summary>
    public static Tensor Compute(Tensor map, int height, int width, EdgeMetric metric = EdgeMetric.KL, double eps = 1e-8)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (height <= 0 || width <= 0)
            throw new ArgumentException($"map {TensorChecks.Shape(map)}: height {height} and width {width} must be positive", nameof(height));
        using var rows = new DenseAttentionRows(map, height, width);
        TensorChecks.RequireRowDistributions(map, "map");
        return Compute(rows, metric, eps);
    }

    /// <summary>
    /// Edge map of Eq 6 from an accumulated self-attention map read in blocks of grid rows, so at most about <paramref name="chunkBytes"/>
    /// of temporaries are alive; returns <c>[H, W]</c>. Each grid row is read once: a block's last two rows are kept as the next block's
    /// upper neighbours. For KL, ln(S + ε) is taken once per row and shared by the four neighbour terms that use it.
    /// </summary>
    public static Tensor Compute(IAttentionRows map, EdgeMetric metric = EdgeMetric.KL, double eps = 1e-8, long chunkBytes = DefaultChunkBytes)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (!(eps >= 0)) throw new ArgumentException($"eps = {eps} must be ≥ 0", nameof(eps));
        int H = map.Height, W = map.Width;
        long hw = (long)H * W;
        // per grid row: reading it, the row and its logarithm, and about six same-sized temporaries of the divergences
        long perRow = map.BytesPerGridRow + 4L * W * hw * 8;
        int rowsPerChunk = (int)Math.Clamp(chunkBytes / Math.Max(1, perRow), 1, H);
        bool kl = metric == EdgeMetric.KL;

        using var scope = NewDisposeScope();
        using var epsScalar = eps.ToScalar();
        var parts = new List<Tensor>();
        Tensor? carry = null, carryLog = null;   // grid rows [r0 − 1, r0 + 1) of the previous block (clamped), already read
        int carryFrom = 0;
        for (int r0 = 0; r0 < H; r0 += rowsPerChunk)
        {
            using var inner = NewDisposeScope();
            int count = Math.Min(rowsPerChunk, H - r0);
            int a = Math.Max(0, r0 - 1), b = Math.Min(H, r0 + count + 1);
            int readFrom = carry is null ? a : carryFrom + (int)(carry.shape[0] / W);
            Tensor block, blockLog = null!;                                              // rows [a, b) and ln(rows + ε)
            if (readFrom >= b) { block = carry!; if (kl) blockLog = carryLog!; }         // the last row: all read already
            else
            {
                var fresh = map.Rows(readFrom, b - readFrom);
                var freshLog = kl ? fresh.add(epsScalar).log_() : null;
                block = carry is null ? fresh : cat(new[] { carry, fresh });
                if (kl) blockLog = carryLog is null ? freshLog! : cat(new[] { carryLog, freshLog! });
            }
            var dev = block.device;
            // replicate-padded neighbours of the pixels of rows [r0, r0+count), as row indices into the block
            var down = new long[count * W]; var up = new long[count * W]; var right = new long[count * W]; var left = new long[count * W];
            for (int i = 0; i < count; i++)
                for (int j = 0; j < W; j++)
                {
                    int gi = r0 + i, k = i * W + j;
                    down[k] = (long)(Math.Min(gi + 1, H - 1) - a) * W + j;
                    up[k] = (long)(Math.Max(gi - 1, 0) - a) * W + j;
                    right[k] = (long)(gi - a) * W + Math.Min(j + 1, W - 1);
                    left[k] = (long)(gi - a) * W + Math.Max(j - 1, 0);
                }
            Tensor Term(long[] pIdx, long[] qIdx)
            {
                using var term = NewDisposeScope();
                var pi = tensor(pIdx, device: dev);
                var qi = tensor(qIdx, device: dev);
                var p = block.index_select(0, pi);
                var d = kl ? p.mul_(blockLog.index_select(0, pi).sub_(blockLog.index_select(0, qi))).sum(-1)   // Σ p·(ln(p+ε) − ln(q+ε))
                           : Divergence(p, block.index_select(0, qi), metric, eps);
                return d.MoveToOuterDisposeScope();
            }
            var vertical = Term(down, up);
            var horizontal = Term(right, left);
            parts.Add(vertical.add_(horizontal).reshape(count, W).MoveToOuterDisposeScope());
            // the next block needs rows [r0 + count − 1, r0 + count + 1): keep copies (a view would keep the whole block alive)
            if (r0 + count < H)
            {
                int keepFrom = r0 + count - 1, keep = Math.Min(H, r0 + count + 1) - keepFrom;
                carry?.Dispose(); carryLog?.Dispose();
                carry = block.narrow(0, (long)(keepFrom - a) * W, (long)keep * W).clone().MoveToOuterDisposeScope();
                carryLog = kl ? blockLog!.narrow(0, (long)(keepFrom - a) * W, (long)keep * W).clone().MoveToOuterDisposeScope() : null;
                carryFrom = keepFrom;
            }
        }
        return cat(parts).MoveToOuterDisposeScope();
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

    /// <summary>Mean over pixels of D(p‖q) between the rows of two maps on the same grid (PeakKL, Alg 1), block by block of grid rows.</summary>
    internal static double MeanRowDivergence(IAttentionRows p, IAttentionRows q, EdgeMetric metric, double eps, long chunkBytes = DefaultChunkBytes)
    {
        if (p.Height != q.Height || p.Width != q.Width)
            throw new ArgumentException($"maps on a {p.Height}×{p.Width} and a {q.Height}×{q.Width} grid cannot be compared");
        int H = p.Height, W = p.Width;
        long hw = (long)H * W;
        long perRow = p.BytesPerGridRow + q.BytesPerGridRow + 4L * W * hw * 6;
        int rowsPerChunk = (int)Math.Clamp(chunkBytes / Math.Max(1, perRow), 1, H);
        double total = 0;
        for (int r0 = 0; r0 < H; r0 += rowsPerChunk)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(rowsPerChunk, H - r0);
            total += Divergence(p.Rows(r0, count), q.Rows(r0, count), metric, eps).sum(ScalarType.Float64).item<double>();
        }
        return total / hw;
    }

    static Tensor Jsd(Tensor p, Tensor q, double eps)
    {
        var logM = ((p + q).mul_(0.5).add_(eps)).log_();
        var a = (p * ((p + eps).log_() - logM)).sum(-1);
        var b = (q * ((q + eps).log_() - logM)).sum(-1);
        return (a + b).mul_(0.5);
    }
}
