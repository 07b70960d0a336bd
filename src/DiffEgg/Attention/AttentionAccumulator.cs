using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Attention;

/// <summary>
/// Self-attention accumulation over layers and resolutions (DiffEGG Eq 11-12).
/// <para>
/// Each <see cref="Add"/> takes one layer's attention probabilities <c>[batch·heads, h·w, h·w]</c> (batch-major: index
/// <c>b·heads + head</c>), averages the heads and adds the result to a running sum kept per resolution <c>(h, w)</c>,
/// so only one <c>[batch, h·w, h·w]</c> sum per resolution is alive (the highest resolution dominates: O((HW)²) memory).
/// <see cref="Result"/> averages the layers of each resolution, upsamples both the query grid and the key grid to the
/// highest resolution with bilinear interpolation (<c>align_corners = false</c>, i.e. half-pixel centres: an image
/// region keeps its place when the grid is refined, and a map that is constant over the blocks of a coarse pixel stays
/// constant there), renormalises every row to sum 1 and averages the resolutions with equal weight.
/// </para>
/// <para>All resolutions must share one aspect ratio (<c>h₁·w₂ = h₂·w₁</c>): the UNet halves both sides at each level.</para>
/// </summary>
public sealed class AttentionAccumulator : IAttentionSink, IDisposable
{
    sealed class Level
    {
        public required int H;
        public required int W;
        public required Tensor Sum; // [batch, h·w, h·w] float32
        public int Count;
        public required string FirstLayer;
    }

    readonly List<Level> _levels = new();
    long _batch = -1;
    string? _firstLayer;
    int _firstH, _firstW;
    bool _disposed;

    /// <summary>Tolerance on row sums (after head averaging) accepted by <see cref="Add"/>.</summary>
    public double RowSumTolerance { get; init; } = 1e-3;

    /// <summary>Height of the highest resolution seen so far (0 before the first layer).</summary>
    public int Height { get; private set; }

    /// <summary>Width of the highest resolution seen so far (0 before the first layer).</summary>
    public int Width { get; private set; }

    /// <summary>Number of layers added so far.</summary>
    public int LayerCount { get; private set; }

    /// <summary>Batch size (from the first layer; −1 before it).</summary>
    public long BatchSize => _batch;

    /// <summary>Adds one layer's self-attention probabilities <c>[batch·heads, h·w, h·w]</c>: heads are averaged and summed into the layer's resolution (Eq 11).</summary>
    public void Add(string layerName, Tensor probs, int heads, int height, int width)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(probs);
        string name = $"probs of layer '{layerName}'";
        if (heads <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"{name} {TensorChecks.Shape(probs)}: heads={heads}, h={height}, w={width} must be positive", nameof(probs));
        long hw = (long)height * width;
        if (probs.dim() != 3 || probs.shape[1] != hw || probs.shape[2] != hw || probs.shape[0] % heads != 0)
            throw new ArgumentException(
                $"{name} {TensorChecks.Shape(probs)}: expected [batch·heads, h·w, h·w] with heads={heads}, h·w={height}·{width}={hw}", nameof(probs));
        TensorChecks.RequireFloat(probs, name);
        long batch = probs.shape[0] / heads;
        if (_batch >= 0 && batch != _batch)
            throw new ArgumentException(
                $"{name} {TensorChecks.Shape(probs)}: batch {batch} (= {probs.shape[0]}/{heads} heads) differs from batch {_batch} of earlier layers", nameof(probs));
        if (_firstLayer != null && (long)height * _firstW != (long)width * _firstH)
            throw new ArgumentException(
                $"{name} {TensorChecks.Shape(probs)}: resolution {height}×{width} has another aspect ratio than {_firstH}×{_firstW} of layer '{_firstLayer}'; all accumulated resolutions must share one aspect ratio", nameof(probs));

        using (no_grad())
        using (NewDisposeScope())
        {
            // Head average in float32 (one pass over the input); the caller disposes probs after we return.
            var byHead = probs.reshape(batch, heads, hw * hw);
            var mean = (probs.dtype == ScalarType.Float32 ? byHead.sum(1) : byHead.sum(1, type: ScalarType.Float32))
                .div_(heads).reshape(batch, hw, hw);
            TensorChecks.RequireRowDistributions(mean, name, RowSumTolerance);

            var level = _levels.Find(l => l.H == height && l.W == width);
            if (level == null)
            {
                level = new Level { H = height, W = width, Sum = mean.DetachFromDisposeScope(), Count = 1, FirstLayer = layerName };
                _levels.Add(level);
            }
            else
            {
                if (level.Sum.device_type != mean.device_type || level.Sum.device_index != mean.device_index)
                    throw new ArgumentException($"{name} {TensorChecks.Shape(probs)}: on {mean.device}, earlier layers of {height}×{width} on {level.Sum.device}", nameof(probs));
                level.Sum.add_(mean);
                level.Count++;
            }
        }

        if (_firstLayer == null) { _firstLayer = layerName; _firstH = height; _firstW = width; _batch = batch; }
        if (hw > (long)Height * Width) { Height = height; Width = width; }
        LayerCount++;
    }

    /// <summary>The accumulated map <c>[batch, H·W, H·W]</c> (float32, highest resolution, rows sum to 1): Eq 12's average over resolutions of the upsampled, renormalised per-resolution means.</summary>
    public Tensor Result()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (LayerCount == 0) throw new InvalidOperationException("AttentionAccumulator.Result: no attention layer was added");
        int H = Height, W = Width;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor? total = null;
        // highest resolution first: it needs no upsampling and gives a contiguous running total
        foreach (var level in _levels.OrderByDescending(l => (long)l.H * l.W))
        {
            using var inner = NewDisposeScope();
            var m = level.Sum / level.Count; // [B, q, k] mean of the layers of this resolution
            if (level.H != H || level.W != W)
                m = Upsample(m, level.H, level.W, H, W);
            m.div_(m.sum(-1, keepdim: true));
            if (total is null) total = m.MoveToOuterDisposeScope();
            else total.add_(m);
        }
        total!.div_(_levels.Count);
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>Bilinearly upsamples the key grid, then the query grid, of <c>[B, h·w, h·w]</c> to <c>[B, H·W, H·W]</c> (align_corners = false); contiguous result.</summary>
    internal static Tensor Upsample(Tensor m, int h, int w, int H, int W)
    {
        long B = m.shape[0];
        long hw = (long)h * w, HW = (long)H * W;
        // keys: [B·q, 1, h, w] -> [B·q, 1, H, W] (small: q = h·w queries)
        var k = nn.functional.interpolate(m.reshape(B * hw, 1, h, w), new long[] { H, W }, mode: InterpolationMode.Bilinear, align_corners: false)
            .reshape(B, h, w, HW);
        // queries: separable linear interpolation along the grid's columns, then rows, with the same half-pixel rule;
        // keys stay the contiguous last axis, so no full-size transpose is needed.
        var kw = Lerp1D(k, 2, w, W);        // [B, h, W, HW]
        var kh = Lerp1D(kw, 1, h, H);       // [B, H, W, HW]
        return kh.reshape(B, HW, HW);
    }

    /// <summary>Linear upsampling of axis <paramref name="dim"/> from n to N samples, align_corners = false (<see cref="GridLerp"/>).</summary>
    static Tensor Lerp1D(Tensor x, int dim, int n, int N)
    {
        if (n == N) return x;
        var (i0, i1, lam) = GridLerp.Table(n, N);
        return GridLerp.Apply(x, dim, i0, i1, lam);
    }

    /// <summary>Accumulates a set of layers in one call (Eq 11-12); returns <c>[batch, H·W, H·W]</c>.</summary>
    public static Tensor Accumulate(IEnumerable<(string name, Tensor probs, int heads, int h, int w)> layers)
    {
        using var acc = new AttentionAccumulator();
        foreach (var (name, probs, heads, h, w) in layers) acc.Add(name, probs, heads, h, w);
        return acc.Result();
    }

    /// <summary>Releases the running sums.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var l in _levels) l.Sum.Dispose();
        _levels.Clear();
    }
}

/// <summary>Linear interpolation of one grid axis with half-pixel centres (align_corners = false), as index/weight tables.</summary>
internal static class GridLerp
{
    /// <summary>Output i of N samples source x = (i+½)·n/N − ½, clamped to [0, n−1]: value = lerp(v[i0], v[i1], lam).</summary>
    public static (long[] I0, long[] I1, float[] Lam) Table(int n, int N)
    {
        var i0 = new long[N];
        var i1 = new long[N];
        var lam = new float[N];
        for (int i = 0; i < N; i++) // N ≤ a few hundred: index/weight tables, not per-pixel tensor work
        {
            double src = Math.Max(0.0, (i + 0.5) * n / N - 0.5);
            long a = Math.Min((long)Math.Floor(src), n - 1);
            i0[i] = a;
            i1[i] = Math.Min(a + 1, n - 1);
            lam[i] = (float)(src - a);
        }
        return (i0, i1, lam);
    }

    /// <summary>lerp(x[…, i0, …], x[…, i1, …], lam) along <paramref name="dim"/> (the output has lam.Length entries there).</summary>
    public static Tensor Apply(Tensor x, int dim, long[] i0, long[] i1, float[] lam)
    {
        var shape = Enumerable.Repeat(1L, (int)x.dim()).ToArray();
        shape[dim] = lam.Length;
        using var lo0 = tensor(i0, device: x.device);
        using var hi0 = tensor(i1, device: x.device);
        var lo = x.index_select(dim, lo0);
        using var hi = x.index_select(dim, hi0);
        using var w0 = tensor(lam, device: x.device);
        using var weight = w0.to_type(x.dtype).reshape(shape);
        return lo.lerp_(hi, weight);
    }
}
