using DiffEgg.Common;
using DiffEgg.Edges;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class TernaryTests
{
    public TernaryTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Classify_KnownMeanAndPopulationSigma()
    {
        // x = [−2, −1.2, 0, 0, 0, 0, 1.2, 2]: μ = 0, population σ = sqrt((4+1.44)·2/8) = sqrt(1.36) = 1.1662 < 1.2,
        // sample σ = sqrt(10.88/7) = 1.2467 > 1.2. Population σ (used) makes ±1.2 certain: 1.2 → edge, −1.2 → interior.
        using var e = tensor(new float[] { -2f, -1.2f, 0, 0, 0, 0, 1.2f, 2f }, new long[] { 2, 4 });
        using var t = TernaryEdges.Classify(e, TernaryRule.MuSigma);
        Assert.Equal(ScalarType.Int8, t.dtype);
        Assert.Equal(new long[] { 2, 4 }, t.shape);
        Assert.Equal(new sbyte[] { 0, 0, -1, -1, -1, -1, 1, 1 }, t.data<sbyte>().ToArray());
    }

    [Fact]
    public void Normalize_MinMax()
    {
        using var e = tensor(new float[] { 2, 4, 6, 3 }, new long[] { 2, 2 });
        using var n = TernaryEdges.Normalize(e);
        Assert.Equal(new float[] { 0, 0.5f, 1, 0.25f }, n.data<float>().ToArray());
        using var c = full(new long[] { 2, 2 }, 3f);
        using var nc = TernaryEdges.Normalize(c);
        Assert.Equal(0f, nc.abs().max().item<float>());
    }

    [Fact]
    public void Png8_RoundTrip_ThreeGreyLevels()
    {
        using var t = tensor(new sbyte[] { 1, 0, -1, 1, -1, 0 }, new long[] { 2, 3 });
        var bytes = TernaryEdges.ToPng8(t);
        Assert.Equal(new byte[] { 255, 0, 128, 255, 128, 0 }, bytes);
        using var back = TernaryEdges.FromPng8(bytes, 2, 3);
        Assert.True(back.equal(t).all().item<bool>());

        using var dir = new TempDir("diffegg-ternary-");
        string path = dir.File("t.png");
        TernaryEdges.WritePng(path, t);
        using var read = TernaryEdges.ReadPng(path);
        Assert.True(read.equal(t).all().item<bool>());

        using var bad = tensor(new sbyte[] { 2, 0 }, new long[] { 1, 2 });
        var ex = Assert.Throws<ArgumentException>(() => TernaryEdges.ToPng8(bad));
        Assert.Contains("[1, 2]", ex.Message);
    }

    [Fact]
    public void Classify_Errors()
    {
        using var r3 = zeros(1, 2, 2);
        var ex = Assert.Throws<ArgumentException>(() => TernaryEdges.Classify(r3));
        Assert.Contains("edgeMap", ex.Message);
        Assert.Contains("[1, 2, 2]", ex.Message);
        using var nan = tensor(new float[] { 0, float.NaN }, new long[] { 1, 2 });
        ex = Assert.Throws<ArgumentException>(() => TernaryEdges.Classify(nan));
        Assert.Contains("NaN", ex.Message);
    }
    // A right-skewed 4×4 map like EdgeKL's: 0.01 ×6, 0.1 ×6, 1 ×3, 10 ×1. μ = 0.85375, σ = 2.39006, so μ − σ = −1.536 < min E = 0.01:
    // the paper's rule has no interior. In log space (δ = 1e-5): μ = −2.44608, σ = 2.07014 → thresholds exp(μ ∓ σ) − δ = 0.010920, 0.68663.
    static readonly float[] Skewed = { 0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 1f, 1f, 1f, 10f };

    [Fact]
    public void SkewedMap_MuSigmaHasNoInterior_LogAndQuantileDo()
    {
        var (lo, hi) = TernaryRule.MuSigma.Thresholds(Skewed);
        Assert.Equal(0.85375 - 2.3900624, lo, 6);
        Assert.Equal(0.85375 + 2.3900624, hi, 6);
        Assert.True(lo < Skewed.Min());
        Assert.Equal(Expect(-1, 6, -1, 6, -1, 3, 1, 1), TernaryEdges.Classify(Skewed, TernaryRule.MuSigma));

        (lo, hi) = TernaryRule.Log.Thresholds(Skewed);
        Assert.Equal(0.0109202, lo, 6);
        Assert.Equal(0.6866326, hi, 6);
        Assert.Equal(Expect(0, 6, -1, 6, 1, 3, 1, 1), TernaryEdges.Classify(Skewed, TernaryRule.Log));

        // quantiles with linear interpolation over the 16 sorted values: q(0.5) = 0.1 (positions 7, 8), q(0.85) = 1 (position 12.75)
        (lo, hi) = TernaryRule.Quantile(0.5, 0.85).Thresholds(Skewed);
        Assert.Equal(0.1, lo, 6);
        Assert.Equal(1.0, hi, 6);
        Assert.Equal(Expect(0, 6, -1, 6, -1, 3, 1, 1), TernaryEdges.Classify(Skewed, TernaryRule.Quantile()));
        Assert.Equal(0.0325, TernaryRule.Quantile(0.35, 0.9).Thresholds(Skewed).Low, 6);   // position 5.25: 0.01 + 0.25 · (0.1 − 0.01)
    }

    // classes of Skewed in order: value class of the six 0.01s, six 0.1s, three 1s and the 10
    static sbyte[] Expect(int a, int na, int b, int nb, int c, int nc, int d, int nd) =>
        Enumerable.Repeat((sbyte)a, na).Concat(Enumerable.Repeat((sbyte)b, nb)).Concat(Enumerable.Repeat((sbyte)c, nc)).Concat(Enumerable.Repeat((sbyte)d, nd)).ToArray();

    [Fact]
    public void DefaultRule_GivesInteriorPixelsOnTheSkewedMap_TensorAndArrayAgree()
    {
        // log-interior: the paper's edge test (E > μ + σ = 3.2438: the 10) and the interior test on ln E (E < 0.010920: the six 0.01s)
        Assert.Same(TernaryRule.LogInterior, TernaryRule.Default);
        var (lo, hi) = TernaryRule.LogInterior.Thresholds(Skewed);
        Assert.Equal(0.0109202, lo, 6);
        Assert.Equal(0.85375 + 2.3900624, hi, 6);
        using var e = tensor(Skewed, new long[] { 4, 4 });
        using var t = TernaryEdges.Classify(e);
        var cls = t.data<sbyte>().ToArray();
        Assert.Equal(TernaryEdges.Classify(Skewed), cls);
        Assert.Equal(Expect(0, 6, -1, 6, -1, 3, 1, 1), cls);
    }

    [Fact]
    public void Auto_PicksLogOnSkewedMaps_AndMuSigmaOnSymmetricOnes()
    {
        Assert.Same(TernaryRule.Log, TernaryRule.Auto.Resolve(Skewed));             // skewness: E 3.474, ln E 0.639
        var symmetric = new float[] { 1, 2, 3, 4, 5, 6, 7, 8 };                          // skewness 0; ln is left-skewed
        Assert.Same(TernaryRule.MuSigma, TernaryRule.Auto.Resolve(symmetric));
        Assert.Equal(TernaryRule.Log.Thresholds(Skewed), TernaryRule.Auto.Thresholds(Skewed));
        Assert.Equal(TernaryRule.MuSigma.Thresholds(symmetric), TernaryRule.Auto.Thresholds(symmetric));
        Assert.Same(TernaryRule.MuSigma, TernaryRule.Auto.Resolve(new float[] { 0, 0, 0 }));   // no positive value
        Assert.Same(TernaryRule.Log, TernaryRule.Log.Resolve(symmetric));
    }

    public static IEnumerable<object[]> AllRules() =>
        new[] { TernaryRule.MuSigma, TernaryRule.Log, TernaryRule.LogInterior, TernaryRule.Auto, TernaryRule.Quantile(), TernaryRule.Quantile(0.3, 0.85) }.Select(r => new object[] { r.Name });

    [Theory]
    [MemberData(nameof(AllRules))]
    public void EveryRule_SoftAgreesWithClassify_AndIsScaleInvariant(string name)
    {
        var rule = TernaryRule.Parse(name);
        Assert.Equal(name, rule.Name);
        var v = LogTriangular(400, seed: 3);
        var (lo, hi) = rule.Thresholds(v);
        Assert.True(double.IsFinite(lo) && double.IsFinite(hi) && lo <= hi, $"{name}: {lo}, {hi}");
        var cls = TernaryEdges.Classify(v, rule);
        var soft = TernaryEdges.Soft(v, rule);
        Assert.Contains(cls, c => c == TernaryEdges.Edge);
        Assert.Contains(cls, c => c == TernaryEdges.Interior);
        for (int i = 0; i < v.Length; i++)
        {
            if (cls[i] == TernaryEdges.Edge) Assert.Equal(1f, soft[i]);
            else if (cls[i] == TernaryEdges.Interior) Assert.Equal(0f, soft[i]);
            else Assert.InRange(soft[i], 0f, 1f);
        }
        // multiplying E by a constant changes no class
        Assert.Equal(cls, TernaryEdges.Classify(v.Select(x => x * 1000f).ToArray(), rule));
        // the tensor forms agree with the array forms
        using var t = tensor(v, new long[] { 20, 20 });
        using var tc = TernaryEdges.Classify(t, rule);
        using var ts = TernaryEdges.Soft(t, rule);
        Assert.Equal(cls, tc.data<sbyte>().ToArray());
        Assert.Equal(soft, ts.data<float>().ToArray());
    }

    // E = exp(u₁ + u₂ − 1) with uniform u: right-skewed (skewness ≈ 0.9) with ln E symmetric on [−1, 1], like a mild EdgeKL map.
    static float[] LogTriangular(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)Math.Exp(rng.NextDouble() + rng.NextDouble() - 1)).ToArray();
    }

    [Fact]
    public void ExactZeros_LogStaysFinite_AutoFallsBackToMuSigma_LogInteriorKeepsEdges()
    {
        // EdgeKL is 0 where neighbouring attention rows are identical; a few such pixels are far-left outliers of ln(E + δ)
        var v = LogTriangular(400, seed: 5);
        for (int i = 0; i < v.Length; i += 37) v[i] = 0;
        var (lo, hi) = TernaryRule.Log.Thresholds(v);
        Assert.True(double.IsFinite(lo) && double.IsFinite(hi) && lo > 0 && lo < hi);
        Assert.All(Enumerable.Range(0, v.Length).Where(i => v[i] == 0), i => Assert.Equal(TernaryEdges.Interior, TernaryEdges.Classify(v, TernaryRule.Log)[i]));
        // the zeros make ln E strongly left-skewed, so auto keeps μ ± σ of E, which still finds edges
        Assert.Same(TernaryRule.MuSigma, TernaryRule.Auto.Resolve(v));
        Assert.Contains(TernaryEdges.Classify(v, TernaryRule.Auto), c => c == TernaryEdges.Edge);
        // log-interior keeps the paper's edge test on E, so the zeros cost it no edges; they are interior
        var li = TernaryEdges.Classify(v, TernaryRule.LogInterior);
        Assert.Equal(TernaryEdges.Classify(v, TernaryRule.MuSigma).Count(c => c == TernaryEdges.Edge), li.Count(c => c == TernaryEdges.Edge));
        Assert.All(Enumerable.Range(0, v.Length).Where(i => v[i] == 0), i => Assert.Equal(TernaryEdges.Interior, li[i]));
    }

    [Fact]
    public void Soft_ConstantMapIsZero_ForEveryRule()
    {
        foreach (var rule in new[] { TernaryRule.MuSigma, TernaryRule.Log, TernaryRule.LogInterior, TernaryRule.Auto, TernaryRule.Quantile() })
        {
            Assert.All(TernaryEdges.Soft(new float[] { 2, 2, 2 }, rule), x => Assert.Equal(0f, x));
            Assert.All(TernaryEdges.Classify(new float[] { 2, 2, 2 }, rule), c => Assert.Equal(TernaryEdges.Uncertain, c));
        }
    }

    [Fact]
    public void Parse_NamesAndLists()
    {
        Assert.Same(TernaryRule.MuSigma, TernaryRule.Parse("musigma"));
        Assert.Same(TernaryRule.Log, TernaryRule.Parse(" LOG "));
        Assert.Same(TernaryRule.LogInterior, TernaryRule.Parse("log-interior"));
        Assert.Equal(TernaryRule.Quantile(0.5, 0.85), TernaryRule.Parse("quantile"));
        Assert.Equal("quantile:0.3,0.9", TernaryRule.Parse("quantile:0.3,0.9").Name);
        Assert.Null(TernaryRule.TryParse("quantile:0.9,0.3"));
        Assert.Null(TernaryRule.TryParse("quantile:0.3"));
        Assert.Null(TernaryRule.TryParse("mu-sigma"));
        Assert.Contains("musigma", Assert.Throws<ArgumentException>(() => TernaryRule.Parse("bogus")).Message);
        var list = TernaryRule.TryParseList("musigma, log,quantile:0.3,0.85,quantile,log-interior");
        Assert.Equal(new[] { "musigma", "log", "quantile:0.3,0.85", "quantile:0.5,0.85", "log-interior" }, list!.Select(r => r.Name));
        Assert.Null(TernaryRule.TryParseList("log,log"));
        Assert.Null(TernaryRule.TryParseList("log,0.5"));
        Assert.Null(TernaryRule.TryParseList(""));
    }
}
