using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Attention;

/// <summary>
/// Self-attention of one image kept as each attn1 layer's queries and keys (an <see cref="IQueryKeySink"/>), read as the accumulated map
/// of Eq 11-12 in blocks of grid rows (<see cref="IAttentionRows"/>): for a block, every layer's probabilities softmax(scale·QKᵀ) are
/// computed for the query rows the block needs, averaged over heads and over the layers of each resolution, upsampled to the highest
/// resolution (queries first, on the coarse key grid, then keys with bilinear interpolation: the same half-pixel rules as
/// <see cref="AttentionAccumulator"/>, which interpolates keys first; the two act on different axes), renormalised per row and averaged
/// over resolutions. Holding Q and K costs 2·N·C floats per layer instead of N² per resolution, and a block of R grid
/// rows costs about R·W·H·W·(heads + 6) floats of temporaries (one head at a time, 7, once a grid row's scores pass 128 MiB), so memory grows linearly with the pixels. Equal to
/// <see cref="AttentionAccumulator.Result"/> up to float rounding (tests: ≤ 1e-5 relative).
/// </summary>
public sealed class QueryKeyAttention : IQueryKeySink, IAttentionRows
{
    sealed class Layer
    {
        public required string Name;
        public required Tensor Q; // [heads, N, d] float32, scale folded in
        public required Tensor K; // [heads, N, d] float32
    }

    sealed class Level
    {
        public required int H;
        public required int W;
        public readonly List<Layer> Layers = new();
    }

    readonly List<Level> _levels = new();
    string? _firstLayer;
    int _firstH, _firstW, _maxHeads;
    bool _disposed;

    /// <summary>Height of the highest resolution seen so far (0 before the first layer).</summary>
    public int Height { get; private set; }

    /// <summary>Width of the highest resolution seen so far (0 before the first layer).</summary>
    public int Width { get; private set; }

    /// <summary>Number of layers added so far.</summary>
    public int LayerCount { get; private set; }

    /// <summary>Bytes of float32 Q and K held.</summary>
    public long HeldBytes { get; private set; }

    /// <summary>Keeps one layer's queries (times <paramref name="scale"/>) and keys <c>[1, heads, h·w, d]</c> (Eq 11 input, one image).</summary>
    public void Add(string layerName, Tensor query, Tensor key, double scale, int height, int width)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        string name = $"queries of layer '{layerName}'";
        long hw = (long)height * width;
        if (height <= 0 || width <= 0)
            throw new ArgumentException($"{name} {TensorChecks.Shape(query)}: h={height}, w={width} must be positive", nameof(query));
        if (query.dim() != 4 || query.shape[2] != hw)
            throw new ArgumentException($"{name} {TensorChecks.Shape(query)}: expected [batch, heads, h·w, d] with h·w = {height}·{width} = {hw}", nameof(query));
        if (query.shape[0] != 1)
            throw new ArgumentException($"{name} {TensorChecks.Shape(query)}: batch {query.shape[0]}; QueryKeyAttention holds one image (batch 1)", nameof(query));
        if (!key.shape.SequenceEqual(query.shape))
            throw new ArgumentException($"keys of layer '{layerName}' {TensorChecks.Shape(key)}: expected the queries' shape {TensorChecks.Shape(query)} (self-attention)", nameof(key));
        TensorChecks.RequireFloat(query, name);
        if (_firstLayer != null && (long)height * _firstW != (long)width * _firstH)
            throw new ArgumentException(
                $"{name} {TensorChecks.Shape(query)}: resolution {height}×{width} has another aspect ratio than {_firstH}×{_firstW} of layer '{_firstLayer}'; all accumulated resolutions must share one aspect ratio", nameof(query));

        Tensor q, k;
        using (no_grad())
        using (NewDisposeScope())
        {
            using var s = scale.ToScalar();
            var q32 = query[0].to_type(ScalarType.Float32).mul(s).contiguous();
            var k32 = key[0].to_type(ScalarType.Float32, copy: true).contiguous();
            TensorChecks.RequireFinite(q32, name);
            TensorChecks.RequireFinite(k32, $"keys of layer '{layerName}'");
            q = q32.DetachFromDisposeScope();
            k = k32.DetachFromDisposeScope();
        }
        var level = _levels.Find(l => l.H == height && l.W == width);
        if (level == null) _levels.Add(level = new Level { H = height, W = width });
        level.Layers.Add(new Layer { Name = layerName, Q = q, K = k });
        HeldBytes += 4 * (q.numel() + k.numel());
        _maxHeads = Math.Max(_maxHeads, (int)q.shape[0]);
        if (_firstLayer == null) { _firstLayer = layerName; _firstH = height; _firstW = width; }
        if (hw > (long)Height * Width) { Height = height; Width = width; }
        LayerCount++;
    }

    /// <summary>Above this size (128 MiB) the scores of all heads for ONE grid row, the scores are computed one head at a time.</summary>
    const long AllHeadsBytes = 128L << 20;

    /// <summary>Whether blocks compute one head at a time (large grids: all heads' scores of one grid row exceed 128 MiB) or all heads in one batch (faster).</summary>
    bool PerHead => 4L * _maxHeads * Width * Height * Width > AllHeadsBytes;

    /// <summary>Float32 rows of H·W keys per pixel of the block: the scores of all heads (or one), the head and level sums, upsampling, total.</summary>
    public long BytesPerGridRow => 4L * Width * Height * Width * ((PerHead ? 1 : _maxHeads) + 6);

    /// <summary>Rows of the accumulated map (Eq 12) for the pixels in grid rows <c>[gridRow, gridRow + count)</c>: <c>[count·W, H·W]</c>.</summary>
    public Tensor Rows(int gridRow, int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (LayerCount == 0) throw new InvalidOperationException("QueryKeyAttention.Rows: no attention layer was added");
        int H = Height, W = Width;
        if (gridRow < 0 || count <= 0 || gridRow + count > H)
            throw new ArgumentOutOfRangeException(nameof(count), $"grid rows [{gridRow}, {gridRow + count}) outside [0, {H})");
        if (4L * W * H * W >= 4L << 20) TorchRuntime.BoundLargeAllocations();   // large rows: keep glibc from hoarding freed blocks
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor? total = null;
        // highest resolution first, as AttentionAccumulator.Result (the same summation order)
        foreach (var level in _levels.OrderByDescending(l => (long)l.H * l.W))
        {
            using var inner = NewDisposeScope();
            Tensor m;
            if (level.H == H && level.W == W)
                m = LevelMean(level, (long)gridRow * W, (long)count * W, PerHead);
            else
            {
                // the coarse grid rows that the fine rows [gridRow, gridRow+count) interpolate from
                var (i0, i1, lam) = GridLerp.Table(level.H, H);
                long lo = i0[gridRow], hi = i1[gridRow + count - 1];
                int band = (int)(hi - lo + 1);
                long hw = (long)level.H * level.W;
                var coarse = LevelMean(level, lo * level.W, band * (long)level.W, PerHead).reshape(band, level.W, hw);   // [band, w, h·w]
                // queries first, on the coarse key grid (a quarter of the keys or fewer): columns w → W, then the block's rows
                if (level.W != W)
                {
                    var (c0, c1, cl) = GridLerp.Table(level.W, W);
                    coarse = GridLerp.Apply(coarse, 1, c0, c1, cl);                                   // [band, W, h·w]
                }
                var r0 = i0.Skip(gridRow).Take(count).Select(v => v - lo).ToArray();
                var r1 = i1.Skip(gridRow).Take(count).Select(v => v - lo).ToArray();
                var q = GridLerp.Apply(coarse, 0, r0, r1, lam.Skip(gridRow).Take(count).ToArray());   // [count, W, h·w]
                // then the keys: bilinear h×w → H×W (the two interpolations act on different axes, so their order does not matter)
                m = nn.functional.interpolate(q.reshape((long)count * W, 1, level.H, level.W), new long[] { H, W },
                    mode: InterpolationMode.Bilinear, align_corners: false).reshape((long)count * W, (long)H * W);
            }
            m.div_(m.sum(-1, keepdim: true));
            if (total is null) total = m.MoveToOuterDisposeScope();
            else total.add_(m);
        }
        using (var n = ((double)_levels.Count).ToScalar()) total!.div_(n);
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>Mean over the level's layers of the head-averaged softmax(scale·QKᵀ) for query tokens <c>[start, start+len)</c>: <c>[len, h·w]</c>.</summary>
    static Tensor LevelMean(Level level, long start, long len, bool perHead)
    {
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        foreach (var layer in level.Layers)
        {
            using var inner = NewDisposeScope();
            long heads = layer.Q.shape[0], keys = layer.K.shape[1];
            Tensor? mean = null;
            if (!perHead)
            {
                // small blocks: every head in one bmm ([heads, len, N] scores)
                var probs = layer.Q.narrow(1, start, len).bmm(layer.K.transpose(1, 2));
                using (var mx = probs.amax(new long[] { -1 }, keepdim: true)) probs.sub_(mx).exp_();
                using (var z = probs.sum(-1, keepdim: true)) probs.div_(z);
                mean = probs.sum(0L);   // 0L: a plain 0 binds to sum(ScalarType) = Byte
            }
            else
                for (long h = 0; h < heads; h++)   // large blocks: one head at a time, [len, N] of scores alive
                {
                    using var head = NewDisposeScope();
                    var probs = layer.Q[h].narrow(0, start, len).mm(layer.K[h].t());
                    using (var mx = probs.amax(new long[] { -1 }, keepdim: true)) probs.sub_(mx).exp_();
                    using (var z = probs.sum(-1, keepdim: true)) probs.div_(z);
                    if (mean is null) mean = probs.MoveToOuterDisposeScope();
                    else mean.add_(probs);
                }
            using (var hs = ((double)heads).ToScalar()) mean!.div_(hs);
            if (sum is null) sum = mean.MoveToOuterDisposeScope();
            else sum.add_(mean);
        }
        using (var c = ((double)level.Layers.Count).ToScalar()) sum!.div_(c);
        return sum.MoveToOuterDisposeScope();
    }

    /// <summary>Releases the queries and keys.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var l in _levels) foreach (var layer in l.Layers) { layer.Q.Dispose(); layer.K.Dispose(); }
        _levels.Clear();
    }
}
