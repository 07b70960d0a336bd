using DiffEgg.Common;
using DiffEgg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Edges;

/// <summary>
/// Ternary edges (DiffEGG Alg 2): with μ and σ the mean and the population standard deviation (divide by H·W, not H·W−1)
/// of the edge map E, a pixel is an edge (1) where E &gt; μ+σ, interior (0) where E &lt; μ−σ and uncertain (−1) otherwise.
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

    /// <summary>Alg 2: classifies an edge map <c>[H, W]</c> into an int8 tensor <c>[H, W]</c> of 1 (edge, E &gt; μ+σ), 0 (interior, E &lt; μ−σ), −1 (uncertain).</summary>
    public static Tensor Classify(Tensor edgeMap)
    {
        ArgumentNullException.ThrowIfNull(edgeMap);
        if (edgeMap.dim() != 2) throw new ArgumentException($"edgeMap {TensorChecks.Shape(edgeMap)}: expected [H, W]", nameof(edgeMap));
        TensorChecks.RequireFloat(edgeMap, nameof(edgeMap));
        TensorChecks.RequireFinite(edgeMap, nameof(edgeMap));
        using var scope = NewDisposeScope();
        var e = edgeMap.to_type(ScalarType.Float64);
        var mu = e.mean();
        var sigma = e.std(unbiased: false);
        var result = full_like(e, (double)Uncertain, dtype: ScalarType.Int8);
        result.masked_fill_(e.gt(mu + sigma), Edge);
        result.masked_fill_(e.lt(mu - sigma), Interior);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Soft ternary map (a continuous form of Alg 2): (E − (μ−σ)) / 2σ clamped to [0, 1], so pixels Alg 2 calls edges are 1, interior
    /// pixels 0 and uncertain ones lie in between in proportion to E; a constant map gives zeros. Same shape and dtype as the input.
    /// </summary>
    public static Tensor Soft(Tensor edgeMap)
    {
        ArgumentNullException.ThrowIfNull(edgeMap);
        TensorChecks.RequireFloat(edgeMap, nameof(edgeMap));
        TensorChecks.RequireFinite(edgeMap, nameof(edgeMap));
        using var scope = NewDisposeScope();
        var values = edgeMap.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        return tensor(Soft(values), edgeMap.shape).to_type(edgeMap.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Soft ternary map of finite values (see <see cref="Soft(Tensor)"/>), μ and σ (population) over all of them.</summary>
    public static float[] Soft(float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        double mu = 0;
        foreach (var x in values) mu += x;
        mu /= Math.Max(1, values.Length);
        double var = 0;
        foreach (var x in values) var += (x - mu) * (x - mu);
        double sigma = Math.Sqrt(var / Math.Max(1, values.Length));
        var r = new float[values.Length];
        if (sigma > 0)
            for (int i = 0; i < r.Length; i++) r[i] = (float)Math.Clamp((values[i] - (mu - sigma)) / (2 * sigma), 0, 1);
        return r;
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
