using DiffEgg.Common;
using DiffEgg.Edges;
using DiffEgg.Refinement;
using TorchSharp;
using static TorchSharp.torch;
using static DiffEgg.Tests.Refinement.Scenes;

namespace DiffEgg.Tests.Refinement;

/// <summary>Soft ternary scaling, the mask clean-up (closing, hole filling) and the guards against texture edges.</summary>
public class RefineRobustnessTests
{
    [Fact]
    public void SoftTernaryMapsMuPlusMinusSigmaToOneAndZero()
    {
        // values 0,0,0,4: μ = 1, σ = √3; (v − (μ−σ)) / 2σ → 0 ↦ (√3−1)/(2√3) = 0.2113, 4 ↦ (3+√3)/(2√3) > 1 ↦ 1
        var v = new float[] { 0, 0, 0, 4 };
        var s = TernaryEdges.Soft(v, TernaryRule.MuSigma);
        Assert.Equal((Math.Sqrt(3) - 1) / (2 * Math.Sqrt(3)), s[0], 5);
        Assert.Equal(1f, s[3]);
        // the tensor version agrees, and Alg 2's classes are the soft map's 1s and 0s
        using var t = tensor(new float[] { 0, 1, 2, 3, 4, 5, 6, 30 }, new long[] { 2, 4 });
        using var soft = TernaryEdges.Soft(t);
        using var cls = TernaryEdges.Classify(t);
        var sv = soft.data<float>().ToArray();
        var cv = cls.data<sbyte>().ToArray();
        Assert.Equal(TernaryEdges.Soft(t.data<float>().ToArray()), sv, new FloatTolerance(1e-6f));
        for (int i = 0; i < sv.Length; i++)
        {
            if (cv[i] == TernaryEdges.Edge) Assert.Equal(1f, sv[i]);
            if (cv[i] == TernaryEdges.Interior) Assert.Equal(0f, sv[i]);
            if (cv[i] == TernaryEdges.Uncertain) Assert.InRange(sv[i], 0f, 1f);
        }
        Assert.All(TernaryEdges.Soft(new float[] { 2, 2, 2 }), x => Assert.Equal(0f, x));
    }

    [Fact]
    public void FillHolesFillsEnclosedBackgroundOnly()
    {
        const int w = 8, h = 8;
        var maps = new float[2 * w * h];
        // map 0: a closed ring (holes inside), map 1: the same ring opened to the border on the right
        for (int y = 1; y <= 6; y++)
            for (int x = 1; x <= 6; x++)
                if (y == 1 || y == 6 || x == 1 || x == 6) { maps[y * w + x] = 1; maps[w * h + y * w + x] = 1; }
        for (int x = 6; x < w; x++) maps[w * h + 3 * w + x] = 0;
        maps[w * h + 3 * w + 7] = 0;
        RefineGrid.FillHoles(maps, 2, h, w);
        Assert.Equal(36, maps.AsSpan(0, w * h).ToArray().Count(v => v > 0));      // 6×6 filled
        Assert.Equal(0f, maps[w * h + 3 * w + 3]);                                  // open ring: inside reaches the border
        Assert.Equal(0f, maps[0]);
    }

    [Fact]
    public void ClosingBridgesAOnePixelGapAndNeverRemovesPixels()
    {
        const int H = 9, W = 13;
        var m = new float[H * W];
        for (int y = 3; y <= 5; y++) { for (int x = 3; x <= 5; x++) m[y * W + x] = 1; for (int x = 7; x <= 9; x++) m[y * W + x] = 1; }
        for (int x = 10; x < W; x++) m[4 * W + x] = 1; // a line touching the image border
        using var t = tensor(m, new long[] { 1, H, W });
        using var c = RefineGrid.Close(t, 1);
        var v = c.data<float>().ToArray();
        Assert.Equal(1f, v[4 * W + 6]);   // the gap column is closed
        Assert.Equal(0f, v[0]);           // far pixels stay background
        Assert.Equal(0f, v[1 * W + 6]);
        for (int i = 0; i < m.Length; i++) Assert.True(v[i] >= m[i], $"closing removed pixel {i}"); // extensive, also at the border
        using var none = RefineGrid.Close(t, 0);
        Assert.Equal(m, none.data<float>().ToArray());
    }

    /// <summary>A 40×40 object whose texture draws a grid of thin edges (8-px cells) inside it, with its outline as edges.</summary>
    static (EdgeMap Edges, byte[] Object) TexturedObject()
    {
        const int W = 64, H = 64;
        var obj = Rect(W, H, 12, 51, 12, 51);
        var e = new float[W * H];
        Ring(e, W, 11, 52, 11, 52);
        for (int k = 20; k < 52; k += 8)
        {
            VLine(e, W, k, 12, 51, 0.9f);
            for (int x = 12; x <= 51; x++) e[k * W + x] = 0.9f;
        }
        return (new EdgeMap(W, H, e), obj);
    }

    [Fact]
    public void TextureCellsDoNotSplitOrShrinkAMask()
    {
        var (edges, obj) = TexturedObject();
        var result = InstanceRefiner.Refine(edges, new[] { new InstanceMask(64, 64, obj, 1, 0.9) });
        var best = result.OrderByDescending(m => m.Score).First();
        Assert.Single(result);
        Assert.True(IoU(best.Pixels, obj) > 0.9, $"IoU {IoU(best.Pixels, obj)}");
        // without the guards (Alg 4 read literally) the same input is cut into texture cells: the guards are what keeps it whole
        var literal = InstanceRefiner.Refine(edges, new[] { new InstanceMask(64, 64, obj, 1, 0.9) },
            new RefineOptions { SplitMinFraction = 0, MinKeep = 0, CloseRadius = 0, FillHoles = false });
        Assert.True(literal.Count > 2, $"{literal.Count} masks without the guards");
    }

    [Fact]
    public void InvalidGuardOptionsAreRejectedByName()
    {
        Assert.Equal("MinKeep", Assert.Throws<InvalidOptionException>(() => new RefineOptions { MinKeep = 1.5 }.Validate()).Option);
        Assert.Equal("SplitMinFraction", Assert.Throws<InvalidOptionException>(() => new RefineOptions { SplitMinFraction = 1 }.Validate()).Option);
        Assert.Equal("CloseRadius", Assert.Throws<InvalidOptionException>(() => new RefineOptions { CloseRadius = -1 }.Validate()).Option);
    }

    sealed class FloatTolerance(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float x) => 0;
    }
}
