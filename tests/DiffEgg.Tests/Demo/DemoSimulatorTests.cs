using DiffEgg.Common;
using DiffEgg.Demo;
using DiffEgg.Refinement;

namespace DiffEgg.Tests.Demo;

public sealed class DemoSimulatorTests
{
    const int W = 32, H = 24;

    /// <summary>Segments 1 and 2 touch along a 6-pixel column boundary; segment 3 stands alone; background is 100.</summary>
    static int[] Map()
    {
        var m = new int[W * H];
        Array.Fill(m, 100);
        for (int y = 2; y < 8; y++)
            for (int x = 2; x < 14; x++) m[y * W + x] = x < 8 ? 1 : 2;
        for (int y = 12; y < 20; y++)
            for (int x = 18; x < 28; x++) m[y * W + x] = 3;
        return m;
    }

    static readonly (int, int)[] Instances = { (1, 1), (2, 2), (3, 1) };

    static byte[] Gt(int[] map, params int[] ids) => map.Select(v => ids.Contains(v) ? (byte)1 : (byte)0).ToArray();

    [Fact]
    public void MergeRateOneMergesTheTouchingPairExactly()
    {
        var map = Map();
        var r = CoarseMaskSimulator.Simulate(map, W, H, Instances, 7, new CoarseSimulationOptions { MergeRate = 1, FragmentRate = 0, BoundaryNoise = 0 });
        Assert.Equal(1, r.TouchingPairs);
        Assert.Equal(1, r.Merges);
        Assert.Equal(0, r.Fragmented);
        Assert.Equal(2, r.Masks.Count);
        var merged = Assert.Single(r.Masks, m => m.Kind == SimulatedMaskKind.Merged);
        Assert.Equal(Gt(map, 1, 2), merged.Pixels);
        Assert.Equal(new[] { 1, 2 }, merged.SourceSegmentIds);
        Assert.Equal(1, merged.CategoryId); // both halves have 36 px; the first one's category wins a tie
        var intact = Assert.Single(r.Masks, m => m.Kind == SimulatedMaskKind.Intact);
        Assert.Equal(Gt(map, 3), intact.Pixels);
        Assert.All(r.Masks, m => Assert.InRange(m.Score, 0.5, 1.0));
    }

    [Fact]
    public void FragmentRateOneCutsEveryInstanceIntoTwoDisjointPieces()
    {
        var map = Map();
        var r = CoarseMaskSimulator.Simulate(map, W, H, Instances, 3, new CoarseSimulationOptions { MergeRate = 0, FragmentRate = 1, BoundaryNoise = 0, MinFragmentArea = 6 });
        Assert.Equal(0, r.Merges);
        Assert.Equal(3, r.Fragmented);
        Assert.Equal(6, r.Masks.Count);
        foreach (var (seg, _) in Instances)
        {
            var pieces = r.Masks.Where(m => m.SourceSegmentIds.SequenceEqual(new[] { seg })).ToList();
            Assert.Equal(2, pieces.Count);
            Assert.All(pieces, p => Assert.Equal(SimulatedMaskKind.Fragment, p.Kind));
            Assert.All(pieces, p => Assert.True(p.Pixels.Count(v => v != 0) >= 6));
            for (int i = 0; i < map.Length; i++)
            {
                Assert.False(pieces[0].Pixels[i] != 0 && pieces[1].Pixels[i] != 0);          // disjoint
                Assert.Equal(map[i] == seg, pieces[0].Pixels[i] != 0 || pieces[1].Pixels[i] != 0); // union = the instance
            }
        }
    }

    [Fact]
    public void MergeRateIsTheFractionOfTouchingPairsMerged()
    {
        var map = Map();
        int merged = 0;
        for (ulong seed = 0; seed < 400; seed++)
            merged += CoarseMaskSimulator.Simulate(map, W, H, Instances, seed, new CoarseSimulationOptions { MergeRate = 0.3, FragmentRate = 0, BoundaryNoise = 0 }).Merges;
        // 400 Bernoulli(0.3) draws: mean 120, sd 9.2; a fixed stream, so this is a fixed number well inside ±4 sd
        Assert.InRange(merged, 84, 156);
        Assert.Equal(0, CoarseMaskSimulator.Simulate(map, W, H, Instances, 1, new CoarseSimulationOptions { MergeRate = 0 }).Merges);
    }

    [Fact]
    public void SimulationIsDeterministicAndNoiseOnlyTouchesBoundaries()
    {
        var map = Map();
        var o = new CoarseSimulationOptions { MergeRate = 0, FragmentRate = 0, BoundaryNoise = 0.5 };
        var a = CoarseMaskSimulator.Simulate(map, W, H, Instances, 11, o);
        var b = CoarseMaskSimulator.Simulate(map, W, H, Instances, 11, o);
        var c = CoarseMaskSimulator.Simulate(map, W, H, Instances, 12, o);
        Assert.Equal(a.Masks.Select(m => m.Pixels), b.Masks.Select(m => m.Pixels));
        Assert.Equal(a.Masks.Select(m => m.Score), b.Masks.Select(m => m.Score));
        Assert.NotEqual(a.Masks.Select(m => m.Pixels), c.Masks.Select(m => m.Pixels));
        Assert.Equal(3, a.Masks.Count);
        foreach (var m in a.Masks)
        {
            var gt = Gt(map, m.SourceSegmentIds);
            Assert.NotEqual(gt, m.Pixels); // simulated masks differ from the ground truth
            for (int i = 0; i < gt.Length; i++)
            {
                if (gt[i] == m.Pixels[i]) continue;
                int x = i % W, y = i / W;
                bool nearBoundary = (x > 0 && gt[i - 1] != gt[i]) || (x + 1 < W && gt[i + 1] != gt[i]) || (y > 0 && gt[i - W] != gt[i]) || (y + 1 < H && gt[i + W] != gt[i]);
                Assert.True(nearBoundary, $"pixel ({x},{y}) changed but is not on the boundary");
            }
        }
    }

    [Fact]
    public void BadRatesAreRejected()
    {
        Assert.Throws<InvalidOptionException>(() => CoarseMaskSimulator.Simulate(Map(), W, H, Instances, 0, new CoarseSimulationOptions { MergeRate = 1.5 }));
        Assert.Throws<InvalidOptionException>(() => WeakSemanticSimulator.Simulate(new byte[W * H], W, H, 0, new WeakSemanticOptions { BoundaryNoise = -0.1 }));
        Assert.Throws<ArgumentException>(() => WeakSemanticSimulator.Simulate(new byte[10], W, H, 0));
    }

    static byte[] ClassMap() => Map().Select(v => v == 100 ? (byte)5 : v == 2 ? (byte)2 : (byte)1).ToArray();

    [Fact]
    public void WeakSemanticKeepsClassIdsAndMovesOnlyBoundaries()
    {
        var cls = ClassMap();
        var o = new WeakSemanticOptions { BoundaryNoise = 0.5, Passes = 2 };
        var a = WeakSemanticSimulator.Simulate(cls, W, H, 21, o);
        Assert.Equal(a, WeakSemanticSimulator.Simulate(cls, W, H, 21, o));
        Assert.NotEqual(a, WeakSemanticSimulator.Simulate(cls, W, H, 22, o));
        Assert.NotEqual(cls, a);
        Assert.Subset(cls.ToHashSet(), a.ToHashSet());
        for (int i = 0; i < cls.Length; i++)
        {
            if (a[i] == cls[i]) continue;
            // a changed pixel took a class present within Passes (Manhattan) pixels in the original map
            int x = i % W, y = i / W;
            bool found = false;
            for (int dy = -2; dy <= 2 && !found; dy++)
                for (int dx = -2; dx <= 2 && !found; dx++)
                    if (Math.Abs(dx) + Math.Abs(dy) <= 2 && (uint)(x + dx) < W && (uint)(y + dy) < H && cls[(y + dy) * W + x + dx] == a[i]) found = true;
            Assert.True(found, $"pixel ({x},{y}) took class {a[i]}, which is not within 2 px in the original");
        }
        Assert.Equal(cls, WeakSemanticSimulator.Simulate(cls, W, H, 21, new WeakSemanticOptions { BoundaryNoise = 0 }));
    }

    [Fact]
    public void NaivePanopticMergesTouchingSameClassThingsAndKeepsStuffWhole()
    {
        // things 1 and 3 are both class 1 but apart; the class-2 half touches the first one
        var cls = ClassMap();
        var isThing = new Dictionary<int, bool> { [1] = true, [2] = true, [5] = false };
        var r = NaivePanoptic.Build(cls, W, H, isThing);
        Assert.Equal(2, r.Segments.Count(s => s.CategoryId == 1));
        Assert.Equal(1, r.Segments.Count(s => s.CategoryId == 2));
        Assert.Equal(1, r.Segments.Count(s => s.CategoryId == 5));
        Assert.Equal(cls.Length, r.Segments.Sum(s => s.Area));
        // same class touching: make the right half class 1 too → one segment for both objects
        var merged = cls.Select(v => v == 2 ? (byte)1 : v).ToArray();
        Assert.Equal(2, NaivePanoptic.Build(merged, W, H, isThing).Segments.Count(s => s.CategoryId == 1));
        var one = NaivePanoptic.Build(merged, W, H, isThing);
        var seg = one.SegmentIds[3 * W + 3];
        Assert.Equal(seg, one.SegmentIds[3 * W + 12]); // both halves in one segment
        Assert.NotEqual(seg, one.SegmentIds[15 * W + 20]);
    }

    [Fact]
    public void OracleEdgesMarkBothSidesOfEveryBoundary()
    {
        var map = Map();
        var e = DemoRunner.GroundTruthBoundaries(map, W, H);
        Assert.Equal(255, e[4 * W + 7]);  // segment 1 next to 2
        Assert.Equal(255, e[4 * W + 8]);  // segment 2 next to 1
        Assert.Equal(0, e[4 * W + 5]);    // inside segment 1
        Assert.Equal(255, e[2 * W + 4]);  // top row of segment 1 touches background
        Assert.Equal(0, e[0]);
    }
}
