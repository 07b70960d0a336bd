using DiffEgg.Attention;
using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class AccumulationTests
{
    public AccumulationTests() => TorchRuntime.EnsureLoaded();

    static Tensor RandomProbs(long n, long hw, int seed)
    {
        using var g = new Generator((ulong)seed);
        using var logits = randn(new long[] { n, hw, hw }, generator: g) * 2;
        return logits.softmax(-1);
    }

    /// <summary>1-D bilinear weights (align_corners = false): output i samples source x = (i+½)·n/N − ½, clamped to [0, n−1].</summary>
    static double[,] Bilinear1D(int n, int N)
    {
        var w = new double[N, n];
        for (int i = 0; i < N; i++)
        {
            double x = Math.Max(0, (i + 0.5) * n / N - 0.5);
            int x0 = Math.Min((int)Math.Floor(x), n - 1);
            int x1 = Math.Min(x0 + 1, n - 1);
            double l = x - x0;
            w[i, x0] += 1 - l;
            w[i, x1] += l;
        }
        return w;
    }

    /// <summary>Reference: U·M·Uᵀ with U = kron(rows, cols) bilinear weights, then rows normalised.</summary>
    static double[,] UpsampleReference(double[,] m, int h, int w, int H, int W)
    {
        var wy = Bilinear1D(h, H);
        var wx = Bilinear1D(w, W);
        int hw = h * w, HW = H * W;
        var u = new double[HW, hw];
        for (int I = 0; I < H; I++) for (int J = 0; J < W; J++) for (int i = 0; i < h; i++) for (int j = 0; j < w; j++)
            u[I * W + J, i * w + j] = wy[I, i] * wx[J, j];
        var um = new double[HW, hw];
        for (int a = 0; a < HW; a++) for (int b = 0; b < hw; b++) { double s = 0; for (int c = 0; c < hw; c++) s += u[a, c] * m[c, b]; um[a, b] = s; }
        var r = new double[HW, HW];
        for (int a = 0; a < HW; a++)
        {
            double rs = 0;
            for (int b = 0; b < HW; b++) { double s = 0; for (int c = 0; c < hw; c++) s += um[a, c] * u[b, c]; r[a, b] = s; rs += s; }
            for (int b = 0; b < HW; b++) r[a, b] /= rs;
        }
        return r;
    }

    static double[,] ToArray2(Tensor t)
    {
        var d = t.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        int n = (int)t.shape[^2], k = (int)t.shape[^1];
        var r = new double[n, k];
        for (int i = 0; i < n; i++) for (int j = 0; j < k; j++) r[i, j] = d[i * k + j];
        return r;
    }

    [Fact]
    public void OneResolution_IsHeadAndLayerMean_RowsSumToOne()
    {
        const int h = 3, w = 4, heads = 2;
        using var a = RandomProbs(heads, h * w, 1);
        using var b = RandomProbs(heads, h * w, 2);
        using var acc = new AttentionAccumulator();
        acc.Add("down.0", a, heads, h, w);
        acc.Add("up.2", b, heads, h, w);
        using var r = acc.Result();
        Assert.Equal(new long[] { 1, 12, 12 }, r.shape);
        Assert.Equal(ScalarType.Float32, r.dtype);
        Assert.Equal((3, 4, 2), (acc.Height, acc.Width, acc.LayerCount));
        using var expected = (a.sum(0L) + b.sum(0L)) / 4;
        Assert.True(r[0].allclose(expected, rtol: 1e-5, atol: 1e-6));
        using var rs = r.sum(-1);
        Assert.True(rs.allclose(ones_like(rs), atol: 1e-5));
    }

    [Fact]
    public void TwoResolutions_HandComputedUpsampling()
    {
        // small 1×2 map M = [[0.8, 0.2], [0.3, 0.7]]; big grid 2×4 (same 1:2 aspect).
        // Bilinear 2→4 (align_corners=false) column weights: [1,0], [.75,.25], [.25,.75], [0,1]; 1→2 rows replicate.
        // Keys of query 0: [0.8, 0.65, 0.35, 0.2] per grid row (sum 4.0 over the 8 keys) → normalised [0.2, 0.1625, 0.0875, 0.05].
        // Keys of query 1: [0.3, 0.4, 0.6, 0.7] → [0.075, 0.1, 0.15, 0.175].
        // Big-grid query in column 0 = small query 0; column 1 = 0.75·q0 + 0.25·q1 (both sums 4.0, so normalising commutes).
        using var small = tensor(new float[] { 0.8f, 0.2f, 0.3f, 0.7f }, new long[] { 1, 2, 2 });
        using var big = full(new long[] { 1, 8, 8 }, 1.0f / 8); // uniform big layer
        using var acc = new AttentionAccumulator();
        acc.Add("mid", small, 1, 1, 2);
        acc.Add("up.3", big, 1, 2, 4);
        using var r = acc.Result();
        Assert.Equal(new long[] { 1, 8, 8 }, r.shape);
        var v = ToArray2(r[0]);
        double[] q0 = { 0.2, 0.1625, 0.0875, 0.05 }, q1 = { 0.075, 0.1, 0.15, 0.175 };
        for (int k = 0; k < 8; k++)
        {
            // result = (uniform + upsampled)/2 over two resolutions
            Assert.Equal((1.0 / 8 + q0[k % 4]) / 2, v[0, k], 1e-6);   // query (0,0)
            Assert.Equal((1.0 / 8 + q0[k % 4]) / 2, v[4, k], 1e-6);   // query (1,0): same block
            Assert.Equal((1.0 / 8 + 0.75 * q0[k % 4] + 0.25 * q1[k % 4]) / 2, v[1, k], 1e-6); // query (0,1)
            Assert.Equal((1.0 / 8 + q1[k % 4]) / 2, v[3, k], 1e-6);   // query (0,3)
        }
    }

    [Fact]
    public void NonSquare_6x8_And_3x4_MatchReference()
    {
        using var big = RandomProbs(1, 48, 3);
        using var small = RandomProbs(1, 12, 4);
        using var r = AttentionAccumulator.Accumulate(new[] { ("a", big, 1, 6, 8), ("b", small, 1, 3, 4) });
        Assert.Equal(new long[] { 1, 48, 48 }, r.shape);
        var up = UpsampleReference(ToArray2(small[0]), 3, 4, 6, 8);
        var bg = ToArray2(big[0]);
        var v = ToArray2(r[0]);
        for (int a = 0; a < 48; a++) for (int b = 0; b < 48; b++)
            Assert.Equal((bg[a, b] + up[a, b]) / 2, v[a, b], 1e-6);
    }

    [Fact]
    public void ThreeResolutions_Factor4_EqualWeightPerResolution()
    {
        // 4×8 (two layers), 2×4 (one layer), 1×2 (one layer): each resolution weighs 1/3 regardless of its layer count.
        using var big1 = RandomProbs(2, 32, 21);
        using var big2 = RandomProbs(2, 32, 22);
        using var mid = RandomProbs(2, 8, 23);
        using var small = RandomProbs(2, 2, 24);
        using var acc = new AttentionAccumulator();
        acc.Add("b1", big1, 2, 4, 8);
        acc.Add("s", small, 2, 1, 2);
        acc.Add("m", mid, 2, 2, 4);
        acc.Add("b2", big2, 2, 4, 8);
        using var r = acc.Result();
        Assert.Equal((4, 8, 4), (acc.Height, acc.Width, acc.LayerCount));
        using var bigMean = (big1.sum(0L) + big2.sum(0L)) / 4;
        using var midMean = mid.mean(new long[] { 0 });
        using var smallMean = small.mean(new long[] { 0 });
        var upMid = UpsampleReference(ToArray2(midMean), 2, 4, 4, 8);
        var upSmall = UpsampleReference(ToArray2(smallMean), 1, 2, 4, 8);
        var bg = ToArray2(bigMean);
        var v = ToArray2(r[0]);
        for (int a = 0; a < 32; a++) for (int b = 0; b < 32; b++)
            Assert.Equal((bg[a, b] + upMid[a, b] + upSmall[a, b]) / 3, v[a, b], 1e-6);
    }

    [Fact]
    public void ConstantPerBlock_SmallUniformUpsamplesToUniform()
    {
        // a 3×4 map whose rows are all uniform (1/12) is constant over every block; upsampled it must be uniform 1/48.
        using var small = full(new long[] { 2, 12, 12 }, 1.0f / 12);
        using var acc = new AttentionAccumulator();
        acc.Add("s", small, 2, 3, 4);
        acc.Add("s2", small, 2, 3, 4);
        using var big = full(new long[] { 2, 48, 48 }, 1.0f / 48);
        acc.Add("b", big, 2, 6, 8);
        using var r = acc.Result();
        Assert.Equal((6, 8, 3), (acc.Height, acc.Width, acc.LayerCount));
        using var expected = full(new long[] { 1, 48, 48 }, 1.0f / 48);
        Assert.True(r.allclose(expected, atol: 1e-7));
    }

    [Fact]
    public void BatchOfTwo_KeepsItemsApart_HeadsAveragedBatchMajor()
    {
        const int heads = 3, hw = 6;
        using var p = RandomProbs(2 * heads, hw, 5); // index b·heads + h
        using var r = AttentionAccumulator.Accumulate(new[] { ("l", p, heads, 2, 3) });
        Assert.Equal(new long[] { 2, 6, 6 }, r.shape);
        using var e0 = p.narrow(0, 0, heads).mean(new long[] { 0 });
        using var e1 = p.narrow(0, heads, heads).mean(new long[] { 0 });
        Assert.True(r[0].allclose(e0, atol: 1e-6));
        Assert.True(r[1].allclose(e1, atol: 1e-6));
        Assert.False(e0.allclose(e1, atol: 1e-3));
    }

    [Fact]
    public void ResultIsNotDisposedWithCallerScopeOfAdd_AndInputMayBeDisposed()
    {
        using var acc = new AttentionAccumulator();
        using (NewDisposeScope())
        {
            var p = RandomProbs(1, 4, 6);
            acc.Add("l", p, 1, 2, 2);
        } // p and all temporaries disposed here
        using var r = acc.Result();
        using var rs = r.sum(-1);
        Assert.True(rs.allclose(ones_like(rs), atol: 1e-5));
    }

    [Fact]
    public void Errors_NameLayerTensorAndShape()
    {
        using var acc = new AttentionAccumulator();
        using var p = RandomProbs(2, 12, 7);
        acc.Add("down.0", p, 2, 3, 4);

        using var sq = RandomProbs(2, 16, 8);
        var ex = Assert.Throws<ArgumentException>(() => acc.Add("up.1", sq, 2, 4, 4)); // aspect 1:1 vs 3:4
        Assert.Contains("up.1", ex.Message);
        Assert.Contains("[2, 16, 16]", ex.Message);
        Assert.Contains("aspect", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => acc.Add("x", p, 2, 2, 4)); // HW 12 ≠ 8
        Assert.Contains("[2, 12, 12]", ex.Message);

        using var rank2 = ones(12, 12) / 12;
        ex = Assert.Throws<ArgumentException>(() => acc.Add("r2", rank2, 1, 3, 4));
        Assert.Contains("r2", ex.Message);
        Assert.Contains("[12, 12]", ex.Message);

        using var notNorm = ones(2, 12, 12) / 10;
        ex = Assert.Throws<ArgumentException>(() => acc.Add("nn", notNorm, 2, 3, 4));
        Assert.Contains("nn", ex.Message);
        Assert.Contains("sum", ex.Message);

        using var nan = (ones(2, 12, 12) / 12).index_put_(tensor(float.NaN), 0, 1, 1);
        ex = Assert.Throws<ArgumentException>(() => acc.Add("nan", nan, 2, 3, 4));
        Assert.Contains("NaN", ex.Message);

        using var b2 = RandomProbs(4, 12, 9); // batch 2 with 2 heads vs batch 1 earlier
        ex = Assert.Throws<ArgumentException>(() => acc.Add("b2", b2, 2, 3, 4));
        Assert.Contains("batch", ex.Message);

        Assert.Equal(1, acc.LayerCount); // failed adds left no trace
    }
}
