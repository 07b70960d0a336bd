using DiffEgg.Common;
using DiffEgg.Edges;
using DiffEgg.Evaluation;

namespace DiffEgg.Tests;

public class EdgeQualityTests
{
    const int H = 16, W = 16;

    // Background 0, square A (id 1) columns 3..7 rows 4..9, square B (id 2) columns 8..12 rows 4..9: A and B touch along x = 7|8.
    static int[] TwoSquares()
    {
        var ids = new int[H * W];
        for (int y = 4; y <= 9; y++)
            for (int x = 3; x <= 12; x++) ids[y * W + x] = x <= 7 ? 1 : 2;
        return ids;
    }

    static float[] ToMap(bool[] m) => m.Select(b => b ? 1f : 0f).ToArray();

    [Fact]
    public void BoundaryIsBothSidesOfEveryContact()
    {
        var b = EdgeQuality.Boundary(TwoSquares(), H, W);
        Assert.True(b[5 * W + 7] && b[5 * W + 8]);   // A|B contact, both sides
        Assert.True(b[5 * W + 2] && b[5 * W + 3]);   // background|A
        Assert.False(b[6 * W + 5]);                   // inside A
        Assert.False(b[0]);                           // far background
        var hard = EdgeQuality.PairBoundary(TwoSquares(), H, W, 1, 2);
        Assert.Equal(12, hard.Count(v => v));         // 6 rows × 2 columns
    }

    [Fact]
    public void ThinBoundaryKeepsTheLargerIdSide()
    {
        var ids = TwoSquares();
        var thin = EdgeQuality.Boundary(ids, H, W, thin: true);
        Assert.True(thin[5 * W + 8] && !thin[5 * W + 7]);   // A(1)|B(2): only B's side
        Assert.True(thin[5 * W + 3] && !thin[5 * W + 2]);   // background(0)|A(1): only A's side
        Assert.Equal(6, EdgeQuality.PairBoundary(ids, H, W, 1, 2, thin: true).Count(v => v));
        var map = ToMap(thin);
        var s = EdgeQuality.Score(map, H, W, ids, H, W, new[] { (1, 2) }, new EdgeQualityOptions { Tolerance = 0, ThinBoundary = true });
        Assert.Equal(1.0, s.F1); Assert.Equal(1.0, s.Auc); Assert.Equal(6, s.HardBoundary); Assert.Equal(1.0, s.HardAuc);
    }

    [Fact]
    public void PerfectMapScoresOne()
    {
        var ids = TwoSquares();
        var map = ToMap(EdgeQuality.Boundary(ids, H, W));
        var s = EdgeQuality.Score(map, H, W, ids, H, W, new[] { (1, 2) });
        Assert.Equal(1.0, s.Precision); Assert.Equal(1.0, s.Recall); Assert.Equal(1.0, s.F1);
        Assert.Equal(1.0, s.Auc);
        Assert.Equal(1.0, s.HardRecall); Assert.Equal(1.0, s.HardPrecision); Assert.Equal(1.0, s.HardAuc);
        Assert.Equal(12, s.HardBoundary);
    }

    [Fact]
    public void InvertedMapHasAucZeroAndConstantMapHalf()
    {
        var ids = TwoSquares();
        var inv = EdgeQuality.Boundary(ids, H, W).Select(b => b ? 0f : 1f).ToArray();
        var s = EdgeQuality.Score(inv, H, W, ids, H, W, new[] { (1, 2) });
        Assert.Equal(0.0, s.Auc); Assert.Equal(0.0, s.HardAuc);
        var c = EdgeQuality.Score(Enumerable.Repeat(0.3f, H * W).ToArray(), H, W, ids, H, W, new[] { (1, 2) });
        Assert.Equal(0.5, c.Auc); Assert.Equal(0.5, c.HardAuc);
        Assert.Equal(0, c.Predicted);      // σ = 0, nothing is strictly above μ+σ
        Assert.Equal(0.0, c.Recall);
    }

    [Fact]
    public void ShiftedMapIsRecalledOnlyWithTolerance()
    {
        var ids = TwoSquares();
        var b = EdgeQuality.Boundary(ids, H, W);
        var shifted = new float[H * W];
        for (int y = 0; y < H; y++)
            for (int x = 0; x + 1 < W; x++) shifted[y * W + x + 1] = b[y * W + x] ? 1f : 0f;
        var t1 = EdgeQuality.Score(shifted, H, W, ids, H, W, null, new EdgeQualityOptions { Tolerance = 1 });
        var t0 = EdgeQuality.Score(shifted, H, W, ids, H, W, null, new EdgeQualityOptions { Tolerance = 0 });
        Assert.Equal(1.0, t1.Recall);
        Assert.Equal(1.0, t1.Precision);
        Assert.True(t0.Recall < 1.0, $"recall at tolerance 0 = {t0.Recall}");
        Assert.True(t0.Precision < 1.0);
    }

    [Fact]
    public void HardScoresSeeOnlyThePairBoundary()
    {
        var ids = TwoSquares();
        var all = EdgeQuality.Boundary(ids, H, W);
        var hard = EdgeQuality.PairBoundary(ids, H, W, 1, 2);
        var outerOnly = ToMap(all.Zip(hard, (a, h) => a && !h).ToArray());
        var s = EdgeQuality.Score(outerOnly, H, W, ids, H, W, new[] { (1, 2) }, new EdgeQualityOptions { Tolerance = 0 });
        Assert.Equal(0, s.HardBoundaryRecalled);
        Assert.Equal(0.0, s.HardRecall);
        Assert.Equal(1.0, s.Precision);
        Assert.Equal(0, s.HardPredicted); // outer-boundary edges inside the pair are explained by other boundaries
    }

    [Fact]
    public void HardAucComparesThePairBoundaryWithThePairInteriorsOnly()
    {
        var ids = TwoSquares();
        var hard = EdgeQuality.PairBoundary(ids, H, W, 1, 2);
        var map = new float[H * W];
        for (int i = 0; i < map.Length; i++) map[i] = hard[i] ? 1f : ids[i] == 0 ? 2f : 0.5f; // background brighter than the boundary
        var s = EdgeQuality.Score(map, H, W, ids, H, W, new[] { (1, 2) });
        Assert.Equal(1.0, s.HardAuc);   // negatives are the squares' interiors (0.5) only
        Assert.True(s.Auc < 0.5, $"all-boundary AUC {s.Auc}"); // the background interior (2) outranks every boundary pixel
    }

    [Fact]
    public void RocAucUsesMidRanksForTies()
    {
        // positives {3, 1}, negatives {2, 1}: wins 3>2, 3>1, tie 1=1 counts 1/2, 1<2 → 2.5 / 4.
        var scores = new float[] { 3, 1, 2, 1 };
        var pos = new[] { true, true, false, false };
        var neg = new[] { false, false, true, true };
        Assert.Equal(0.625, EdgeQuality.RocAuc(scores, pos, neg), 12);
        Assert.True(double.IsNaN(EdgeQuality.RocAuc(scores, new bool[4], neg)));
    }

    [Fact]
    public void InteriorClassIsScoredAgainstPixelsFarFromEveryBoundary()
    {
        // Two squares: 68 GT boundary pixels, 64 more within 1 px of one (the tolerance band), 124 true interior pixels.
        var ids = TwoSquares();
        var gt = EdgeQuality.Boundary(ids, H, W);
        var near = EdgeQuality.Dilate(gt, H, W, 1);
        Assert.Equal((68, 124), (gt.Count(b => b), near.Count(b => !b)));
        // Map: boundary 1, band 0.1, true interior 0.001 + 1e-6·k (distinct, increasing in row-major order), and one boundary pixel
        // (A|B contact at (5, 7)) at 0.0005, the lowest value. Quantile rule 0.3 / 0.7 over the 256 sorted values: lo at position 76.5
        // (between the 76th and 77th lowest) → 77 interior-class pixels: the low boundary pixel and the 76 lowest true interior ones;
        // hi at position 178.5 (inside the band block, 125..188) = 0.1 → the 67 other boundary pixels are edges.
        var map = new float[H * W];
        int k = 0;
        for (int i = 0; i < map.Length; i++) map[i] = gt[i] ? 1f : near[i] ? 0.1f : 0.001f + 1e-6f * k++;
        map[5 * W + 7] = 0.0005f;
        var s = EdgeQuality.Score(map, H, W, ids, H, W, null, new EdgeQualityOptions { Ternary = TernaryRule.Quantile(0.3, 0.7) });
        Assert.Equal(0.1f, (float)s.Threshold);
        Assert.Equal(67, s.Predicted);
        Assert.Equal(1.0, s.Precision);
        Assert.Equal(1.0, s.Recall);                       // (5, 7) is within 1 px of predicted boundary pixels
        Assert.Equal((124, 77, 76, 1), (s.TrueInterior, s.InteriorPredicted, s.InteriorPredictedCorrect, s.BoundaryAsInterior));
        Assert.Equal(76.0 / 77, s.InteriorPrecision, 12);
        Assert.Equal(76.0 / 124, s.InteriorRecall, 12);
        var sum = EdgeQuality.Aggregate(new[] { s, s });
        Assert.Equal(76.0 / 77, sum.InteriorPrecision, 12);
        Assert.Equal(76.0 / 124, sum.InteriorRecall, 12);
        Assert.Equal(1.0 / 68, sum.BoundaryAsInterior, 12);
        // the paper's μ ± σ on this map: μ − σ < 0, so no interior class (precision undefined, recall 0)
        var ms = EdgeQuality.Aggregate(new[] { EdgeQuality.Score(map, H, W, ids, H, W, null, new EdgeQualityOptions { Ternary = TernaryRule.MuSigma }) });
        Assert.True(double.IsNaN(ms.InteriorPrecision));
        Assert.Equal(0.0, ms.InteriorRecall);
    }

    [Fact]
    public void MeanPlusStdIsPopulationStd()
    {
        // values 0,0,0,4: μ = 1, σ = sqrt((1+1+1+9)/4) = sqrt(3)
        Assert.Equal(1 + Math.Sqrt(3), EdgeQuality.MeanPlusStd(new float[] { 0, 0, 0, 4 }), 12);
    }

    [Fact]
    public void DilateIsChebyshevSquare()
    {
        var m = new bool[25];
        m[2 * 5 + 2] = true;
        var d = EdgeQuality.Dilate(m, 5, 5, 1);
        Assert.Equal(9, d.Count(v => v));
        Assert.True(d[1 * 5 + 1] && d[3 * 5 + 3] && !d[0]);
    }

    [Fact]
    public void ResamplingHasHalfPixelCentres()
    {
        var up = EdgeQuality.ResampleBilinear(new float[] { 0, 1 }, 1, 2, 1, 4);
        Assert.Equal(new float[] { 0, 0.25f, 0.75f, 1 }, up);
        var down = EdgeQuality.ResampleNearest(new[] { 1, 2, 3, 4 }, 1, 4, 1, 2);
        Assert.Equal(new[] { 2, 4 }, down); // centres 0.5 and 1.5 of the target sample source x = 1 and 3
    }

    [Fact]
    public void LowResolutionPerfectMapScoresOneAgainstDownsampledGroundTruth()
    {
        // 32x32 GT made of 2x2 blocks; the edge map is the perfect boundary of the 16x16 downsampled ids.
        var small = TwoSquares();
        var big = new int[32 * 32];
        for (int y = 0; y < 32; y++) for (int x = 0; x < 32; x++) big[y * 32 + x] = small[(y / 2) * W + x / 2];
        var map = ToMap(EdgeQuality.Boundary(small, H, W));
        var s = EdgeQuality.Score(map, H, W, big, 32, 32, new[] { (1, 2) });
        Assert.Equal(1.0, s.F1); Assert.Equal(1.0, s.Auc); Assert.Equal(H, s.Height);
        var u = EdgeQuality.Score(map, H, W, big, 32, 32, new[] { (1, 2) }, new EdgeQualityOptions { Match = EdgeResolutionMatch.UpsampleEdgeMap });
        Assert.Equal(32, u.Height);
        Assert.Equal(1.0, u.Recall);
        Assert.True(u.Auc > 0.95, $"upsampled AUC {u.Auc}");
    }

    [Fact]
    public void BadInputIsRejected()
    {
        var ids = TwoSquares();
        var map = new float[H * W];
        map[17] = float.NaN;
        var e = Assert.Throws<DiffEggException>(() => EdgeQuality.Score(map, H, W, ids, H, W));
        Assert.Contains("row 1, column 1", e.Message);
        Assert.Throws<ArgumentException>(() => EdgeQuality.Score(new float[10], H, W, ids, H, W));
    }

    [Fact]
    public void AggregatePoolsCountsAndAveragesAuc()
    {
        var a = new EdgeScores { Predicted = 10, PredictedCorrect = 5, Boundary = 4, BoundaryRecalled = 4, Auc = 0.8, HardAuc = double.NaN };
        var b = new EdgeScores { Predicted = 30, PredictedCorrect = 30, Boundary = 12, BoundaryRecalled = 6, Auc = 0.6, HardBoundary = 2, HardBoundaryRecalled = 1, HardAuc = 0.9 };
        var s = EdgeQuality.Aggregate(new[] { a, b });
        Assert.Equal(35.0 / 40, s.Precision, 12);
        Assert.Equal(10.0 / 16, s.Recall, 12);
        Assert.Equal(0.7, s.Auc, 12);
        Assert.Equal(1, s.HardImages); Assert.Equal(0.5, s.HardRecall, 12); Assert.Equal(0.9, s.HardAuc, 12);
    }

    // Gap measure: a 6×6 object (id 1) at rows/columns 2..7 of a 10×10 background; its boundary is the 20-pixel ring.
    static int[] OneSquare()
    {
        var ids = new int[10 * 10];
        for (int y = 2; y <= 7; y++) for (int x = 2; x <= 7; x++) ids[y * 10 + x] = 1;
        return ids;
    }

    static bool[] Ring(int[] ids) =>
        Enumerable.Range(0, 100).Select(i => ids[i] == 1 && (i % 10 == 2 || i % 10 == 7 || i / 10 == 2 || i / 10 == 7)).ToArray();

    [Fact]
    public void LargestRunCoverageCountsOnlyTheBestConnectedRunAroundEachObject()
    {
        var ids = OneSquare();
        var ring = Ring(ids);
        Assert.Equal(20, ring.Count(v => v));
        // closed contour: one run covers the whole boundary
        Assert.Equal(new EdgeQuality.RunCoverage(20, 20, 1), EdgeQuality.LargestRunCoverage(ring, ids, 10, 10, new[] { 1 }, 0));
        // two 1-px gaps (top and bottom row at x = 4) cut it into runs of 8 (left) and 10 (right) pixels: recall 18/20, largest run 10/20
        var cut = (bool[])ring.Clone();
        cut[2 * 10 + 4] = false; cut[7 * 10 + 4] = false;
        Assert.Equal(new EdgeQuality.RunCoverage(20, 10, 1), EdgeQuality.LargestRunCoverage(cut, ids, 10, 10, new[] { 1 }, 0));
        // tolerance 1: the right run also covers the two gap pixels next to it → 12/20
        Assert.Equal(new EdgeQuality.RunCoverage(20, 12, 1), EdgeQuality.LargestRunCoverage(cut, ids, 10, 10, new[] { 1 }, 1));
        // no edges: nothing covered; an object id not in the map is not counted
        Assert.Equal(new EdgeQuality.RunCoverage(20, 0, 1), EdgeQuality.LargestRunCoverage(new bool[100], ids, 10, 10, new[] { 1, 5 }, 1));
        // the same ring drawn one pixel outside the object (on the background side) counts with tolerance 1, not with 0
        var outside = Enumerable.Range(0, 100).Select(i => { int y = i / 10, x = i % 10; return Math.Max(Math.Abs(2 * y - 9), Math.Abs(2 * x - 9)) == 7; }).ToArray();
        Assert.Equal(28, outside.Count(v => v));
        Assert.Equal(new EdgeQuality.RunCoverage(20, 0, 1), EdgeQuality.LargestRunCoverage(outside, ids, 10, 10, new[] { 1 }, 0));
        Assert.Equal(new EdgeQuality.RunCoverage(20, 20, 1), EdgeQuality.LargestRunCoverage(outside, ids, 10, 10, new[] { 1 }, 1));
        // the background (id 0) is an object too when asked for: its boundary is that ring without its 4 corners (24 pixels)
        Assert.Equal(new EdgeQuality.RunCoverage(44, 44, 2), EdgeQuality.LargestRunCoverage(outside, ids, 10, 10, new[] { 0, 1 }, 1));
    }

    [Fact]
    public void ScoreAndAggregateReportTheGapMeasureOverTheGivenObjects()
    {
        var ids = OneSquare();
        var cut = Ring(ids);
        cut[2 * 10 + 4] = false; cut[7 * 10 + 4] = false;
        var map = ToMap(cut);
        var s = EdgeQuality.Score(map, 10, 10, ids, 10, 10, options: new EdgeQualityOptions { Tolerance = 0 }, objects: new[] { 1 });
        Assert.Equal(20, s.ObjectBoundary); Assert.Equal(10, s.ObjectBoundaryInLargestRun); Assert.Equal(1, s.Objects);
        Assert.Equal(0.5, s.LargestRun, 12);
        Assert.Equal(18, s.BoundaryRecalled); // boundary recall counts 18 of the object's 20 boundary pixels: only the gap measure sees the cut
        var closed = EdgeQuality.Score(ToMap(Ring(ids)), 10, 10, ids, 10, 10, options: new EdgeQualityOptions { Tolerance = 0 }, objects: new[] { 1 });
        Assert.Equal(1.0, closed.LargestRun, 12);
        var agg = EdgeQuality.Aggregate(new[] { s, closed });
        Assert.Equal(30.0 / 40, agg.LargestRun, 12); // pooled over boundary length
        Assert.Equal(2, agg.Objects);
        Assert.True(double.IsNaN(new EdgeScores().LargestRun));
    }
}
