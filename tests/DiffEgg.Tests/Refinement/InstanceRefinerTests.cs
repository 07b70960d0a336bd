using DiffEgg.Common;
using DiffEgg.Refinement;
using TorchSharp;
using static TorchSharp.torch;
using static DiffEgg.Tests.Refinement.Scenes;

namespace DiffEgg.Tests.Refinement;

public class InstanceRefinerTests
{
    /// <summary>These tests check which masks come out and which scores they keep: no re-scoring by edge agreement.</summary>
    static readonly RefineOptions NoRescore = new() { RescoreWeight = 0 };

    [Fact]
    public void MergedMaskOverTwoTouchingSquaresIsSplitInTwo()
    {
        const int W = 96, H = 96;
        var a = Rect(W, H, 20, 59, 8, 47);   // 40×40
        var b = Rect(W, H, 20, 59, 49, 88);  // 40×40, edge column 48 between them
        var e = new float[W * H];
        Ring(e, W, 19, 60, 7, 89);
        VLine(e, W, 48, 19, 60);
        var merged = Or(Or(a, b), Rect(W, H, 20, 59, 48, 48));
        var result = InstanceRefiner.Refine(new EdgeMap(W, H, e), new[] { new InstanceMask(W, H, merged, 3, 0.9) }, NoRescore);

        var top = result.OrderByDescending(m => m.Score).Take(2).ToList();
        Assert.All(top, m => Assert.Equal(0.9, m.Score, 6));
        Assert.All(top, m => Assert.Equal(3, m.CategoryId));
        Assert.True(top.Max(m => IoU(m.Pixels, a)) > 0.95, "left square not recovered");
        Assert.True(top.Max(m => IoU(m.Pixels, b)) > 0.95, "right square not recovered");
        // the original survives only as a lower-scored candidate (×0.5)
        Assert.Equal(3, result.Count);
        var orig = result.Single(m => m.Score < 0.9);
        Assert.Equal(0.45, orig.Score, 6);
        Assert.Equal(merged, orig.Pixels);
    }

    [Fact]
    public void TwoFragmentsOfOneSquareBecomeOneMask()
    {
        const int W = 80, H = 80;
        var square = Rect(W, H, 20, 59, 20, 59);
        var e = new float[W * H];
        Ring(e, W, 19, 60, 19, 60);
        var left = Rect(W, H, 20, 59, 20, 39);
        var right = Rect(W, H, 20, 59, 40, 59);
        var result = InstanceRefiner.Refine(new EdgeMap(W, H, e),
            new[] { new InstanceMask(W, H, left, 1, 0.7), new InstanceMask(W, H, right, 1, 0.8) }, NoRescore);
        var m = Assert.Single(result);
        Assert.True(IoU(m.Pixels, square) > 0.95, $"IoU {IoU(m.Pixels, square)}");
        Assert.Equal(0.8, m.Score, 6);
    }

    [Fact]
    public void FragmentsOfDifferentCategoriesAreNotMerged()
    {
        const int W = 80, H = 80;
        var e = new float[W * H];
        Ring(e, W, 19, 60, 19, 60);
        var result = InstanceRefiner.Refine(new EdgeMap(W, H, e),
            new[] { new InstanceMask(W, H, Rect(W, H, 20, 59, 20, 39), 1, 0.7), new InstanceMask(W, H, Rect(W, H, 20, 59, 40, 59), 2, 0.8) });
        Assert.Equal(2, result.Count);
    }

    [Fact]
    public void MaskTouchingNoEdgeIsReturnedUnchanged()
    {
        const int W = 64, H = 48;
        var e = new float[W * H];
        Ring(e, W, 2, 10, 50, 60); // edges far from the mask
        var blob = new byte[W * H];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if ((y - 25) * (y - 25) + (x - 22) * (x - 22) <= 100) blob[y * W + x] = 1;
        var result = InstanceRefiner.Refine(new EdgeMap(W, H, e), new[] { new InstanceMask(W, H, blob, 5, 0.6) });
        var m = Assert.Single(result);
        Assert.True(IoU(m.Pixels, blob) > 0.99);
        Assert.Equal(0.6, m.Score);
    }

    [Fact]
    public void RefinementWorksThroughReducedResolution()
    {
        // 256×256 image, edges at full size: the working grid is 128×128 (edges max-pooled), result upsampled
        const int W = 256, H = 256;
        var a = Rect(W, H, 64, 191, 32, 127);
        var b = Rect(W, H, 64, 191, 130, 223);
        var e = new float[W * H];
        Ring(e, W, 62, 193, 30, 225);
        VLine(e, W, 128, 62, 193); VLine(e, W, 129, 62, 193);
        var merged = Or(Or(a, b), Rect(W, H, 64, 191, 128, 129));
        var result = InstanceRefiner.Refine(new EdgeMap(W, H, e), new[] { new InstanceMask(W, H, merged, 1, 1.0) }, NoRescore);
        var top = result.Where(m => m.Score == 1.0).ToList();
        Assert.Equal(2, top.Count);
        Assert.True(top.Max(m => IoU(m.Pixels, a)) > 0.95);
        Assert.True(top.Max(m => IoU(m.Pixels, b)) > 0.95);
    }

    [Fact]
    public void MergeUnitesOverlappingSameCategoryMasksKeepingHigherScore()
    {
        const int W = 20, H = 20;
        var m1 = new InstanceMask(W, H, Rect(W, H, 0, 9, 0, 9), 1, 0.3);
        var m2 = new InstanceMask(W, H, Rect(W, H, 0, 9, 1, 10), 1, 0.9);  // IoU 90/110
        var m3 = new InstanceMask(W, H, Rect(W, H, 12, 19, 12, 19), 1, 0.5);
        var r = MaskMerge.Merge(new[] { m1, m2, m3 }, 0.5);
        Assert.Equal(2, r.Count);
        Assert.Equal(0.9, r[0].Score);
        Assert.Equal(110, r[0].Area);
        Assert.Same(m3, r[1]);
        Assert.Equal(3, MaskMerge.Merge(new[] { m1, m2, m3 }, 0.85).Count);
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        var e = new EdgeMap(4, 4, new float[16]);
        var m = new[] { new InstanceMask(4, 4, new byte[16]) };
        Assert.Throws<InvalidOptionException>(() => InstanceRefiner.Refine(e, m, new RefineOptions { Radius = 0 }));
        Assert.Throws<InvalidOptionException>(() => InstanceRefiner.Refine(e, m, new RefineOptions { MergeIoU = 0 }));
        Assert.Throws<ArgumentException>(() => InstanceRefiner.Refine(e, new[] { m[0], new InstanceMask(5, 4, new byte[20]) }));
    }
}
