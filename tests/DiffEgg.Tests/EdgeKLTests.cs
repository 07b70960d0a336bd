using DiffEgg.Common;
using DiffEgg.Edges;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class EdgeKLTests
{
    public EdgeKLTests() => TorchRuntime.EnsureLoaded();

    /// <summary>
    /// 4×4 grid, region A = columns 0-1, region B = columns 2-3; every pixel attends uniformly to its own region
    /// (8 pixels, 1/8 each). Vertical neighbours always share the region → vertical term 0. Horizontal term of (i,j)
    /// with replicate border: j=0: D(S[i,1]‖S[i,0]) = D(A‖A) = 0; j=1: D(S[i,2]‖S[i,0]) = D(B‖A); j=2: D(S[i,3]‖S[i,1]) =
    /// D(B‖A); j=3: D(S[i,3]‖S[i,2]) = D(B‖B) = 0. With D = KL_ε:
    /// D(B‖A) = Σ_{k∈B} (1/8)·(ln(1/8+ε) − ln(0+ε)) = ln((1/8+ε)/ε)   (the 8 terms of A have p = 0).
    /// </summary>
    static Tensor TwoRegionMap(ScalarType dtype)
    {
        var m = new double[16 * 16];
        for (int q = 0; q < 16; q++)
        {
            bool qa = q % 4 < 2;
            for (int k = 0; k < 16; k++) m[q * 16 + k] = (k % 4 < 2) == qa ? 1.0 / 8 : 0.0;
        }
        return tensor(m, new long[] { 16, 16 }).to_type(dtype);
    }

    [Fact]
    public void TwoRegions_KL_ZeroInsideAndClosedFormOnBoundary()
    {
        double eps = 1e-8;
        using var map = TwoRegionMap(ScalarType.Float64);
        using var e = EdgeKL.Compute(map, 4, 4, EdgeMetric.KL, eps);
        Assert.Equal(new long[] { 4, 4 }, e.shape);
        double c = Math.Log((1.0 / 8 + eps) / eps);
        var v = e.data<double>().ToArray();
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(0.0, v[i * 4 + 0]);            // exactly 0 inside region A
            Assert.Equal(c, v[i * 4 + 1], 1e-10);
            Assert.Equal(c, v[i * 4 + 2], 1e-10);
            Assert.Equal(0.0, v[i * 4 + 3]);            // exactly 0 inside region B
        }
    }

    [Fact]
    public void TwoRegions_Float32_Batched_MatchesFloat64()
    {
        using var map64 = TwoRegionMap(ScalarType.Float64);
        using var map32 = map64.to_type(ScalarType.Float32).unsqueeze(0); // [1, HW, HW] form
        using var e64 = EdgeKL.Compute(map64, 4, 4);
        using var e32 = EdgeKL.Compute(map32, 4, 4);
        Assert.Equal(ScalarType.Float32, e32.dtype);
        Assert.True(e32.to_type(ScalarType.Float64).allclose(e64, rtol: 1e-5, atol: 1e-5));
    }

    [Theory]
    [InlineData(EdgeMetric.JSD)]
    [InlineData(EdgeMetric.L2)]
    [InlineData(EdgeMetric.Cosine)]
    public void TwoRegions_OtherMetrics_ClosedForm(EdgeMetric metric)
    {
        double eps = 1e-8;
        using var map = TwoRegionMap(ScalarType.Float64);
        using var e = EdgeKL.Compute(map, 4, 4, metric, eps);
        // JSD(B,A): m = 1/16 everywhere; ½Σ_B (1/8)ln((1/8+ε)/(1/16+ε)) + ½Σ_A (same) = ln((1/8+ε)/(1/16+ε)) ≈ ln 2.
        // L2: ‖B−A‖ = sqrt(16·(1/8)²) = 1/2.   Cosine: B·A = 0 → 1 − 0 = 1.
        double c = metric switch
        {
            EdgeMetric.JSD => Math.Log((1.0 / 8 + eps) / (1.0 / 16 + eps)),
            EdgeMetric.L2 => 0.5,
            _ => 1.0,
        };
        var v = e.data<double>().ToArray();
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(0.0, v[i * 4 + 0], 1e-12);
            Assert.Equal(c, v[i * 4 + 1], 1e-10);
            Assert.Equal(c, v[i * 4 + 2], 1e-10);
            Assert.Equal(0.0, v[i * 4 + 3], 1e-12);
        }
    }

    [Fact]
    public void Divergences_MatchClosedForms()
    {
        using var p = tensor(new double[] { 0.5, 0.5 }).unsqueeze(0);
        using var q = tensor(new double[] { 0.25, 0.75 }).unsqueeze(0);
        double kl = 0.5 * Math.Log(0.5 / 0.25) + 0.5 * Math.Log(0.5 / 0.75);
        double m0 = 0.375, m1 = 0.625;
        double jsd = 0.5 * (0.5 * Math.Log(0.5 / m0) + 0.5 * Math.Log(0.5 / m1)) + 0.5 * (0.25 * Math.Log(0.25 / m0) + 0.75 * Math.Log(0.75 / m1));
        double l2 = Math.Sqrt(0.25 * 0.25 * 2);
        double cos = 1 - (0.5 * 0.25 + 0.5 * 0.75) / (Math.Sqrt(0.5) * Math.Sqrt(0.625));
        Assert.Equal(kl, EdgeKL.Divergence(p, q, EdgeMetric.KL, 0).item<double>(), 1e-12);
        Assert.Equal(jsd, EdgeKL.Divergence(p, q, EdgeMetric.JSD, 0).item<double>(), 1e-12);
        Assert.Equal(l2, EdgeKL.Divergence(p, q, EdgeMetric.L2, 0).item<double>(), 1e-12);
        Assert.Equal(cos, EdgeKL.Divergence(p, q, EdgeMetric.Cosine, 0).item<double>(), 1e-12);
        // KL is asymmetric, JSD symmetric
        Assert.NotEqual(kl, EdgeKL.Divergence(q, p, EdgeMetric.KL, 0).item<double>(), 6);
        Assert.Equal(jsd, EdgeKL.Divergence(q, p, EdgeMetric.JSD, 0).item<double>(), 12);
    }

    [Fact]
    public void NonSquareGrid_VerticalBoundary_OneSidedAtBorders()
    {
        // 3×2 grid (H=3, W=2), rows 0 attends to {row 0}, rows 1-2 attend to {rows 1,2}: a horizontal boundary between rows 0 and 1.
        // Vertical term, replicate border: i=0: D(S[1]‖S[0]); i=1: D(S[2]‖S[0]); i=2: D(S[2]‖S[1]) = 0. Horizontal term 0.
        // D(S[1]‖S[0]) = Σ over the 4 keys of rows 1-2 (1/4)·ln((1/4+ε)/ε) = ln((1/4+ε)/ε).
        const int H = 3, W = 2, HW = 6;
        var m = new double[HW * HW];
        for (int q = 0; q < HW; q++)
        {
            bool top = q / W == 0;
            for (int k = 0; k < HW; k++) m[q * HW + k] = (k / W == 0) == top ? (top ? 0.5 : 0.25) : 0;
        }
        using var map = tensor(m, new long[] { HW, HW });
        double eps = 1e-8;
        using var e = EdgeKL.Compute(map, H, W, EdgeMetric.KL, eps);
        Assert.Equal(new long[] { H, W }, e.shape);
        double c = Math.Log((0.25 + eps) / eps);
        var v = e.data<double>().ToArray();
        for (int i = 0; i < 4; i++) Assert.Equal(c, v[i], 1e-10); // rows 0 and 1 (both columns)
        Assert.Equal(0.0, v[4]);
        Assert.Equal(0.0, v[5]);
    }

    [Fact]
    public void Errors_NameTensorAndShape()
    {
        using var bad = ones(3, 5, 5) / 5;
        var ex = Assert.Throws<ArgumentException>(() => EdgeKL.Compute(bad, 5, 1));
        Assert.Contains("map", ex.Message);
        Assert.Contains("[3, 5, 5]", ex.Message);

        using var sq = ones(6, 6) / 6;
        ex = Assert.Throws<ArgumentException>(() => EdgeKL.Compute(sq, 2, 2)); // HW 6 ≠ 2·2
        Assert.Contains("[6, 6]", ex.Message);

        using var notNorm = ones(4, 4) / 3;
        ex = Assert.Throws<ArgumentException>(() => EdgeKL.Compute(notNorm, 2, 2));
        Assert.Contains("[4, 4]", ex.Message);
        Assert.Contains("sum", ex.Message);

        using var nan = (ones(4, 4) / 4).index_put_(tensor(float.NaN), 1, 2);
        ex = Assert.Throws<ArgumentException>(() => EdgeKL.Compute(nan, 2, 2));
        Assert.Contains("NaN", ex.Message);
        Assert.Contains("[4, 4]", ex.Message);

        using var neg = tensor(new float[] { 1.5f, -0.5f, 0.5f, 0.5f }, new long[] { 2, 2 });
        ex = Assert.Throws<ArgumentException>(() => EdgeKL.Compute(neg, 1, 2));
        Assert.Contains("negative", ex.Message);
    }
}
