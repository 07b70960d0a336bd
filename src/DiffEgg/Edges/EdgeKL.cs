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
    /// of temporaries are alive; returns <c>[H, W]</c>. Each grid row is read once (the previous block stays alive for the upper
    /// neighbours) and the neighbour rows are views, not copies; for KL, ln(S + ε) is taken once per row and shared by the up to four
    /// terms that use it.
    /// </summary>
    public static Tensor Compute(IAttentionRows map, EdgeMetric metric = EdgeMetric.KL, double eps = 1e-8, long chunkBytes = DefaultChunkBytes)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (!(eps >= 0)) throw new ArgumentException($"eps = {eps} must be ≥ 0", nameof(eps));
        int H = map.Height, W = map.Width;
        long hw = (long)H * W;
        // per grid row: reading it, its logarithm (KL), and a few same-sized temporaries of the divergences; two blocks are alive
        long perRow = 2 * (map.BytesPerGridRow + 4L * W * hw) + 4L * W * hw * 4;
        // at least two rows per block, so that rows i−1, i, i+1 always lie in the two blocks held
        int rowsPerChunk = (int)Math.Clamp(chunkBytes / Math.Max(1, perRow), Math.Min(2, H), H);
        bool kl = metric == EdgeMetric.KL;

        using var scope = NewDisposeScope();
        using var epsScalar = eps.ToScalar();
        // two blocks of rows (and their logarithms) are alive: the current one and the one before it
        (int From, int Count, Tensor Rows, Tensor? Log)? previous = null, current = null;
        void LoadNext()
        {
            int from = current is { } c ? c.From + c.Count : 0;
            int count = Math.Min(rowsPerChunk, H - from);
            if (previous is { } p) { p.Rows.Dispose(); p.Log?.Dispose(); }
            previous = current;
            var rows = map.Rows(from, count).DetachFromDisposeScope();
            var log = kl ? rows.add(epsScalar).log_().DetachFromDisposeScope() : null;
            current = (from, count, rows, log);
        }
        (Tensor S, Tensor? L) Row(int i)
        {
            foreach (var b in new[] { current!.Value, previous ?? current!.Value })
                if (i >= b.From && i < b.From + b.Count)
                    return (b.Rows.narrow(0, (long)(i - b.From) * W, W), b.Log?.narrow(0, (long)(i - b.From) * W, W));
            throw new InvalidOperationException($"EdgeKL: grid row {i} is not in the blocks held");
        }
        Tensor D(Tensor p, Tensor? lp, Tensor q, Tensor? lq) =>
            kl ? lp!.sub(lq!).mul_(p).sum(-1)                                   // Σ p·(ln(p+ε) − ln(q+ε))
               : Divergence(p, q, metric, eps);

        // E for grid rows [i, i+len) of block b whose upper and lower neighbours lie in b too (views of b, no gathering): [len, W]
        Tensor Inside((int From, int Count, Tensor Rows, Tensor? Log) b, int i, int len)
        {
            using var inner = NewDisposeScope();
            var x = b.Rows.reshape(b.Count, W, hw);
            var lx = b.Log?.reshape(b.Count, W, hw);
            Tensor Rws(Tensor? t, int row) => t!.narrow(0, row - b.From, len);
            var vertical = D(Rws(x, i + 1), kl ? Rws(lx, i + 1) : null, Rws(x, i - 1), kl ? Rws(lx, i - 1) : null);
            return vertical.add_(Horizontal(Rws(x, i), kl ? Rws(lx, i) : null)).MoveToOuterDisposeScope();
        }
        // D(S[i,j+1] ‖ S[i,j−1]) along the last-but-one axis (columns) of x [..., W, H·W], replicate at the borders: [..., W]
        Tensor Horizontal(Tensor x, Tensor? lx)
        {
            int axis = (int)x.dim() - 2;
            if (W == 1) return zeros(x.shape[..^1], dtype: x.dtype, device: x.device);
            Tensor Col(Tensor? t, int j, int n) => t!.narrow(axis, j, n);
            var first = D(Col(x, 1, 1), kl ? Col(lx, 1, 1) : null, Col(x, 0, 1), kl ? Col(lx, 0, 1) : null);
            var last = D(Col(x, W - 1, 1), kl ? Col(lx, W - 1, 1) : null, Col(x, W - 2, 1), kl ? Col(lx, W - 2, 1) : null);
            return W == 2 ? cat(new[] { first, last }, axis)
                : cat(new[] { first, D(Col(x, 2, W - 2), kl ? Col(lx, 2, W - 2) : null, Col(x, 0, W - 2), kl ? Col(lx, 0, W - 2) : null), last }, axis);
        }

        try
        {
            var parts = new List<Tensor>();
            for (int i = 0; i < H;)
            {
                while (current is null || Math.Min(i + 1, H - 1) >= current.Value.From + current.Value.Count) LoadNext();
                var cur = current.Value;
                int end = Math.Min(cur.From + cur.Count - 1, H - 1);   // rows before it have their lower neighbour in this block
                if (i >= 1 && i - 1 >= cur.From && i < end)
                {
                    parts.Add(Inside(cur, i, end - i));
                    i = end;
                    continue;
                }
                // a grid border or a block edge: this row on its own, its neighbours from either block, replicated at the borders
                using var inner = NewDisposeScope();
                var (up, lUp) = Row(Math.Max(i - 1, 0));
                var (down, lDown) = Row(Math.Min(i + 1, H - 1));
                var (x, lx) = Row(i);
                var vertical = D(down, lDown, up, lUp);                             // [W]: D(S[i+1,j] ‖ S[i−1,j])
                parts.Add(vertical.add_(Horizontal(x, lx)).unsqueeze(0).MoveToOuterDisposeScope());
                i++;
            }
            return cat(parts).MoveToOuterDisposeScope();
        }
        finally
        {
            foreach (var b in new[] { previous, current })
                if (b is { } held) { held.Rows.Dispose(); held.Log?.Dispose(); }
        }
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
