using DiffEgg.Common;
using DiffEgg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Edges;

/// <summary>
/// Ternary edges (DiffEGG Alg 2): a pixel of the edge map E is an edge (1) where E &gt; hi, interior (0) where E &lt; lo and uncertain (−1)
/// otherwise, with the thresholds (lo, hi) of a <see cref="TernaryRule"/>: the paper's μ ± σ (population σ, <see cref="TernaryRule.MuSigma"/>),
/// μ ± σ of ln E (<see cref="TernaryRule.Log"/>, the default) or quantiles. The soft ternary map uses the same thresholds.
/// </summary>
public static class TernaryEdges
{
    /// <summary>Class value of an edge pixel.</summary>
    public const sbyte Edge = 1;
    /// <summary>Class value of an interior (non-edge) pixel.</summary>
    public const sbyte Interior = 0;
    /// <summary>Class value of an uncertain pixel (ignored by <c>MaskedDice</c>).</summary>
    public const sbyte Uncertain = -1;

    /// <summary>Grey level of edge pixels in <see cref="ToPng8"/>.</summary>
    public const byte EdgeGray = 255;
    /// <summary>Grey level of uncertain pixels in <see cref="ToPng8"/>.</summary>
    public const byte UncertainGray = 128;
    /// <summary>Grey level of interior pixels in <see cref="ToPng8"/>.</summary>
    public const byte InteriorGray = 0;

    /// <summary>
    /// Alg 2: classifies an edge map <c>[H, W]</c> into an int8 tensor <c>[H, W]</c> of 1 (edge, E &gt; hi), 0 (interior, E &lt; lo), −1 (uncertain),
    /// (lo, hi) the thresholds of <paramref name="rule"/> (null = <see cref="TernaryRule.Default"/>) over the whole map.
    /// </summary>
    public static Tensor Classify(Tensor edgeMap, TernaryRule? rule = null)
    {
        ArgumentNullException.ThrowIfNull(edgeMap);
        if (edgeMap.dim() != 2) throw new ArgumentException($"edgeMap {TensorChecks.Shape(edgeMap)}: expected [H, W]", nameof(edgeMap));
        TensorChecks.RequireFloat(edgeMap, nameof(edgeMap));
        TensorChecks.RequireFinite(edgeMap, nameof(edgeMap));
        using var scope = NewDisposeScope();
        var (lo, hi) = (rule ?? TernaryRule.Default).Thresholds(Values(edgeMap));
        var e = edgeMap.to_type(ScalarType.Float64);
        var result = full_like(e, (double)Uncertain, dtype: ScalarType.Int8);
        result.masked_fill_(e.gt(hi), Edge);
        result.masked_fill_(e.lt(lo), Interior);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Alg 2 on a row-major float map: int8 classes (1 edge, 0 interior, −1 uncertain) with the thresholds of <paramref name="rule"/> (null = default).</summary>
    public static sbyte[] Classify(float[] values, TernaryRule? rule = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        var (lo, hi) = (rule ?? TernaryRule.Default).Thresholds(values);
        var r = new sbyte[values.Length];
        for (int i = 0; i < r.Length; i++) r[i] = values[i] > hi ? Edge : values[i] < lo ? Interior : Uncertain;
        return r;
    }

    /// <summary>
    /// Soft ternary map (a continuous form of Alg 2): (E − lo) / (hi − lo) clamped to [0, 1], (lo, hi) the thresholds of <paramref name="rule"/>
    /// (null = <see cref="TernaryRule.Default"/>; with <see cref="TernaryRule.MuSigma"/> this is (E − (μ−σ)) / 2σ), so pixels Alg 2 calls edges
    /// are 1, interior pixels 0 and uncertain ones lie in between in proportion to E (with lo = hi, e.g. a constant map, only E &gt; hi is 1). Same shape and dtype as the input.
    /// </summary>
    public static Tensor Soft(Tensor edgeMap, TernaryRule? rule = null)
    {
        ArgumentNullException.ThrowIfNull(edgeMap);
        TensorChecks.RequireFloat(edgeMap, nameof(edgeMap));
        TensorChecks.RequireFinite(edgeMap, nameof(edgeMap));
        using var scope = NewDisposeScope();
        return tensor(Soft(Values(edgeMap), rule), edgeMap.shape).to_type(edgeMap.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Soft ternary map of finite values (see <see cref="Soft(Tensor, TernaryRule?)"/>), thresholds over all of them.</summary>
    public static float[] Soft(float[] values, TernaryRule? rule = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        var (lo, hi) = (rule ?? TernaryRule.Default).Thresholds(values);
        var r = new float[values.Length];
        for (int i = 0; i < r.Length; i++)
        {
            // Written so that E > hi gives exactly 1 and E < lo exactly 0, matching Classify (also when lo = hi).
            double v = values[i];
            r[i] = v > hi ? 1f : v < lo || hi <= lo ? 0f : (float)Math.Clamp((v - lo) / (hi - lo), 0, 1);
        }
        return r;
    }

    static float[] Values(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
    }

    /// <summary>Min-max normalisation of an edge map to [0, 1] for visualisation (a constant map gives zeros).</summary>
    public static Tensor Normalize(Tensor edgeMap)
    {
        ArgumentNullException.ThrowIfNull(edgeMap);
        TensorChecks.RequireFloat(edgeMap, nameof(edgeMap));
        TensorChecks.RequireFinite(edgeMap, nameof(edgeMap));
        using var scope = NewDisposeScope();
        var min = edgeMap.min();
        var range = edgeMap.max() - min;
        double r = range.to_type(ScalarType.Float64).item<double>();
        var result = r > 0 ? (edgeMap - min) / range : zeros_like(edgeMap);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Alg 2 output as 8-bit grey pixels, row-major <c>H·W</c> bytes (edge 255, uncertain 128, interior 0), ready for <see cref="ImageIO.WriteGrayPng"/>.</summary>
    public static byte[] ToPng8(Tensor ternary)
    {
        ArgumentNullException.ThrowIfNull(ternary);
        if (ternary.dim() != 2) throw new ArgumentException($"ternary {TensorChecks.Shape(ternary)}: expected [H, W]", nameof(ternary));
        using var scope = NewDisposeScope();
        var t = ternary.to_type(ScalarType.Int16).cpu();
        var valid = t.eq(Edge).logical_or(t.eq(Interior)).logical_or(t.eq(Uncertain));
        if (!valid.all().item<bool>())
            throw new ArgumentException($"ternary {TensorChecks.Shape(ternary)}: values must be 1 (edge), 0 (interior) or −1 (uncertain)", nameof(ternary));
        var g = full_like(t, (int)UncertainGray, dtype: ScalarType.Byte);
        g.masked_fill_(t.eq(Edge), EdgeGray);
        g.masked_fill_(t.eq(Interior), InteriorGray);
        return g.contiguous().data<byte>().ToArray();
    }

    /// <summary>Inverse of <see cref="ToPng8"/>: grey ≥ 192 → edge (1), &lt; 64 → interior (0), otherwise uncertain (−1); returns int8 <c>[height, width]</c>.</summary>
    public static Tensor FromPng8(byte[] pixels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (height <= 0 || width <= 0 || pixels.LongLength != (long)height * width)
            throw new ArgumentException($"pixels [{pixels.Length}]: expected height·width = {height}·{width} bytes", nameof(pixels));
        using var scope = NewDisposeScope();
        var g = tensor(pixels, new long[] { height, width });
        var result = full(new long[] { height, width }, (int)Uncertain, dtype: ScalarType.Int8);
        result.masked_fill_(g.ge(192), Edge);
        result.masked_fill_(g.lt(64), Interior);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Writes ternary edges <c>[H, W]</c> as an 8-bit grey PNG (see <see cref="ToPng8"/>), atomically.</summary>
    public static void WritePng(string path, Tensor ternary)
    {
        var bytes = ToPng8(ternary);
        ImageIO.WriteGrayPng(path, bytes, (int)ternary.shape[1], (int)ternary.shape[0]);
    }

    /// <summary>Reads a ternary edge PNG written by <see cref="WritePng"/> (see <see cref="FromPng8"/>); int8 <c>[H, W]</c>.</summary>
    public static Tensor ReadPng(string path)
    {
        var bytes = ImageIO.ReadGray(path, out int w, out int h, out _);
        return FromPng8(bytes, h, w);
    }
}
