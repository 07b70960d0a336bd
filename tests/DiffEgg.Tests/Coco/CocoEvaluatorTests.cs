using DiffEgg.Evaluation;
using DiffEgg.Formats;

namespace DiffEgg.Tests.Coco;

/// <summary>COCOeval cases whose answers are derived by hand from pycocotools' rules (see comments).</summary>
public class CocoEvaluatorTests
{
    const double Tol = 1e-12;

    static CocoDataset Gt(int images, params (long id, long img, long cat, double[] box, double area, int crowd)[] anns)
    {
        var ds = new CocoDataset();
        for (int i = 1; i <= images; i++) ds.Images.Add(new CocoImage(i, 200, 200, $"{i}.jpg"));
        ds.Categories.Add(new CocoCategory(1, "a"));
        ds.Categories.Add(new CocoCategory(2, "b"));
        foreach (var a in anns)
            ds.Annotations.Add(new CocoAnnotation
            {
                Id = a.id, ImageId = a.img, CategoryId = a.cat, Bbox = a.box, Area = a.area, IsCrowd = a.crowd,
                Segmentation = CocoSegmentation.FromPolygons(new[] { Box(a.box) }),
            });
        return ds;
    }

    static double[] Box(double[] b) => new[] { b[0], b[1], b[0], b[1] + b[3], b[0] + b[2], b[1] + b[3], b[0] + b[2], b[1] };

    static CocoResult Det(long img, long cat, double score, params double[] box) => new() { ImageId = img, CategoryId = cat, Score = score, Bbox = box };

    static void AssertClose(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], Tol);
    }

    static double[] Eval(CocoDataset gt, CocoIouType type, params CocoResult[] dts) => CocoEvaluator.Evaluate(gt, dts, type).Stats;

    [Fact]
    public void ClassAgnosticEvaluationIgnoresTheCategories()
    {
        // two objects of categories 1 and 2, found exactly but with swapped categories: AP 0 per category, 1 class-agnostic
        var gt = Gt(1, (1, 1, 1, new double[] { 10, 10, 40, 40 }, 1600, 0), (2, 1, 2, new double[] { 100, 100, 50, 30 }, 1500, 0));
        var dts = new[] { Det(1, 2, 0.9, 10, 10, 40, 40), Det(1, 1, 0.8, 100, 100, 50, 30) };
        Assert.Equal(0, Eval(gt, CocoIouType.Bbox, dts)[0], Tol);
        var (g, d) = CocoEvaluator.ClassAgnostic(gt, dts);
        Assert.Equal(new long[] { 1 }, g.Categories.Select(c => c.Id));
        Assert.All(g.Annotations, a => Assert.Equal(1, a.CategoryId));
        Assert.Equal(1, CocoEvaluator.Evaluate(g, d, CocoIouType.Bbox).Stats[0], Tol);
        Assert.Equal(2, gt.Categories.Count);   // the inputs are not changed
    }

    [Theory]
    [InlineData(CocoIouType.Bbox)]
    [InlineData(CocoIouType.Segm)]
    public void PerfectDetection_GivesOne_AndMinusOneForEmptyAreaRanges(CocoIouType type)
    {
        var gt = Gt(1, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0));
        var s = Eval(gt, type, Det(1, 1, 0.9, 0, 0, 10, 10));
        // precision of a lone TP is tp/(fp+tp+np.spacing(1)) = 1/(1+2^-52), just below 1, as in pycocotools
        var r = CocoEvaluator.Evaluate(gt, new[] { Det(1, 1, 0.9, 0, 0, 10, 10) }, type);
        Assert.Equal(1.0 / (1.0 + 2.220446049250313e-16), r.Precision[0]);
        Assert.True(s[0] < 1.0);
        AssertClose(new double[] { 1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1 }, s);
    }

    [Fact]
    public void TwoGts_FpBetweenTps_PrecisionEnvelopeAndRecallThresholds()
    {
        // d1 (.9) hits A exactly, d2 (.8) hits nothing, d3 (.7) has IoU 80/100 = .8 with B.
        // IoU thr .50-.80 (7): tp=[1,1,2] fp=[0,1,1] rc=[.5,.5,1] pr=[1,.5,.667] -> envelope [1,.667,.667]:
        //   recThrs 0..0.50 (51) -> 1, 0.51..1 (50) -> 2/3.  thr .85-.95 (3): rc=[.5,.5,.5] -> 51 ones, 50 zeros.
        var gt = Gt(1, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0), (2, 1, 1, new double[] { 20, 0, 10, 10 }, 100, 0));
        var s = Eval(gt, CocoIouType.Bbox, Det(1, 1, .9, 0, 0, 10, 10), Det(1, 1, .8, 100, 100, 10, 10), Det(1, 1, .7, 20, 0, 10, 8));
        double apMatched = (51 + 50 * (2.0 / 3.0)) / 101, apUnmatched = 51.0 / 101;
        Assert.Equal((7 * apMatched + 3 * apUnmatched) / 10, s[0], Tol);
        Assert.Equal(apMatched, s[1], Tol);
        Assert.Equal(apMatched, s[2], Tol);
        Assert.Equal(s[0], s[3], Tol);                 // all areas are 100 -> small
        Assert.Equal(-1, s[4]); Assert.Equal(-1, s[5]);
        Assert.Equal(0.5, s[6], Tol);                  // maxDets=1: only d1 -> recall 1/2 at every threshold
        Assert.Equal(0.85, s[7], Tol);                 // (7*1 + 3*.5)/10
        Assert.Equal(0.85, s[8], Tol);
    }

    [Fact]
    public void CrowdGt_AbsorbsDetections_WithDetectionAreaAsUnion()
    {
        // d1 lies inside the crowd region: IoU = 100/100 (dt area) -> matched to an ignored gt -> ignored. d2 is a TP.
        var gt = Gt(1, (1, 1, 1, new double[] { 0, 0, 50, 50 }, 2500, 1), (2, 1, 1, new double[] { 60, 0, 10, 10 }, 100, 0));
        foreach (var type in new[] { CocoIouType.Bbox, CocoIouType.Segm })
        {
            var s = Eval(gt, type, Det(1, 1, .9, 0, 0, 10, 10), Det(1, 1, .8, 60, 0, 10, 10));
            Assert.Equal(1.0, s[0], Tol);
            Assert.Equal(1.0, s[8], Tol);
        }
        // without the crowd flag d1 is a false positive ranked first: rc = [0, .5], pr = [0, .5] -> .5 up to recall .5, then 0
        var plain = Gt(1, (1, 1, 1, new double[] { 0, 0, 50, 50 }, 2500, 0), (2, 1, 1, new double[] { 60, 0, 10, 10 }, 100, 0));
        var p = Eval(plain, CocoIouType.Bbox, Det(1, 1, .9, 0, 0, 10, 10), Det(1, 1, .8, 60, 0, 10, 10));
        Assert.Equal(51 * 0.5 / 101, p[1], Tol);
    }

    [Fact]
    public void AreaRanges_AreInclusive_AndUseTheStoredGtArea()
    {
        // area exactly 32^2 belongs to both small and medium
        var s = Eval(Gt(1, (1, 1, 1, new double[] { 0, 0, 32, 32 }, 1024, 0)), CocoIouType.Bbox, Det(1, 1, .9, 0, 0, 32, 32));
        AssertClose(new double[] { 1, 1, -1 }, s[3..6]);
        s = Eval(Gt(1, (1, 1, 1, new double[] { 0, 0, 96, 96 }, 9216, 0)), CocoIouType.Bbox, Det(1, 1, .9, 0, 0, 96, 96));
        AssertClose(new double[] { -1, 1, 1 }, s[3..6]);
        // a 10x10 box whose stored area says 2000: the gt is medium, not small (pycocotools reads ann['area'])
        s = Eval(Gt(1, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 2000, 0)), CocoIouType.Segm, Det(1, 1, .9, 0, 0, 10, 10));
        AssertClose(new double[] { -1, 1, -1 }, s[3..6]);
        AssertClose(new double[] { -1, 1, -1 }, s[9..12]);
    }

    [Fact]
    public void UnmatchedDetectionOutsideTheAreaRange_IsIgnored()
    {
        // gt small (100). d1 (.9) is a large FP (area 10000) -> ignored in 'small' but counts in 'all'.
        var gt = Gt(1, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0));
        var s = Eval(gt, CocoIouType.Bbox, Det(1, 1, .9, 100, 100, 100, 100), Det(1, 1, .8, 0, 0, 10, 10));
        Assert.Equal(0.5, s[0], Tol);  // pr = [0, .5] -> .5
        Assert.Equal(1.0, s[3], Tol);  // small: the large FP is ignored
    }

    [Fact]
    public void MaxDetsCut_AndImagesWithoutGt()
    {
        // image 1: FP (.9) then TP (.8) for gt 1; gt 2 is never found. AR1 = 0, AR10 = 1/2.
        var gt = Gt(2, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0), (2, 1, 1, new double[] { 50, 50, 10, 10 }, 100, 0));
        var s = Eval(gt, CocoIouType.Bbox, Det(1, 1, .9, 100, 100, 10, 10), Det(1, 1, .8, 0, 0, 10, 10));
        Assert.Equal(0, s[6]);
        Assert.Equal(0.5, s[7], Tol);
        // a confident FP in image 2 (no gt there) is ranked first: tp=[0,1] fp=[1,1] rc=[0,.5]... AP50 = 51*.5/101
        s = Eval(Gt(2, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0)), CocoIouType.Bbox, Det(1, 1, .5, 0, 0, 10, 10), Det(2, 1, .9, 0, 0, 10, 10));
        Assert.Equal(0.5, s[1], Tol); // rc=[0,1], pr=[0,.5] -> envelope .5 at every recall threshold
    }

    [Fact]
    public void ScoreTies_KeepFileOrder_AndImageOrder()
    {
        var gt = Gt(1, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0));
        // same score: FP written first -> ranked first -> AP .5 ; TP written first -> AP 1
        Assert.Equal(0.5, Eval(gt, CocoIouType.Bbox, Det(1, 1, .8, 100, 100, 10, 10), Det(1, 1, .8, 0, 0, 10, 10))[1], Tol);
        Assert.Equal(1.0, Eval(gt, CocoIouType.Bbox, Det(1, 1, .8, 0, 0, 10, 10), Det(1, 1, .8, 100, 100, 10, 10))[1], Tol);
        // across images ties go by image id (concatenation order), whatever the file order
        var gt2 = Gt(2, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0));
        Assert.Equal(1.0, Eval(gt2, CocoIouType.Bbox, Det(2, 1, .8, 0, 0, 10, 10), Det(1, 1, .8, 0, 0, 10, 10))[1], Tol);
        var gt3 = Gt(2, (1, 2, 1, new double[] { 0, 0, 10, 10 }, 100, 0));
        Assert.Equal(0.5, Eval(gt3, CocoIouType.Bbox, Det(2, 1, .8, 0, 0, 10, 10), Det(1, 1, .8, 0, 0, 10, 10))[1], Tol);
    }

    [Fact]
    public void Categories_AbsentFromGt_AreSkipped_AndCategoriesWithoutGt_AreExcludedFromTheMean()
    {
        var gt = Gt(1, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0));
        // category 2 is declared but has no gt: its FP changes nothing (precision stays -1 for it);
        // category 7 is not declared at all: ignored.
        var s = Eval(gt, CocoIouType.Bbox, Det(1, 1, .5, 0, 0, 10, 10), Det(1, 2, .9, 0, 0, 10, 10), Det(1, 7, .95, 0, 0, 10, 10));
        Assert.Equal(1.0, s[0], Tol);
        // no results at all: AP = AR = 0 where gt exists
        var e = Eval(gt, CocoIouType.Segm);
        Assert.Equal(new double[] { 0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1 }, e);
    }

    [Fact]
    public void GtWithId0_ReadsAsUnmatched_AsInPycocotools()
    {
        // pycocotools stores the matched gt id in dtMatches and tests it for != 0: a gt with id 0 never yields a TP
        var s = Eval(Gt(1, (0, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0)), CocoIouType.Bbox, Det(1, 1, .9, 0, 0, 10, 10));
        Assert.Equal(0.0, s[0]);
    }

    [Fact]
    public void Segm_MatchesMasksFromRleAndPolygons_WithBoxModeAreaRule()
    {
        var gt = Gt(1, (1, 1, 1, new double[] { 0, 0, 20, 20 }, 400, 0));
        var mask = Rle.FromBbox(new double[] { 0, 0, 20, 20 }, 200, 200);
        var half = Rle.FromBbox(new double[] { 0, 0, 20, 10 }, 200, 200);
        // exact mask: 1 ; half mask: IoU .5 -> matched at .5 only -> AP = 1/10, AP50 = 1
        var s = CocoEvaluator.Evaluate(gt, new[] { new CocoResult { ImageId = 1, CategoryId = 1, Score = 1, Segmentation = CocoSegmentation.FromRle(mask) } }, CocoIouType.Segm).Stats;
        Assert.Equal(1.0, s[0], Tol);
        s = CocoEvaluator.Evaluate(gt, new[] { new CocoResult { ImageId = 1, CategoryId = 1, Score = 1, Segmentation = CocoSegmentation.FromRle(half, compressed: false) } }, CocoIouType.Segm).Stats;
        Assert.Equal(0.1, s[0], Tol);
        Assert.Equal(1.0, s[1], Tol);
        // result with a segmentation AND a (wrong, large) bbox: loadRes takes area = w*h of the bbox -> 'large' not 'small'
        var r = new CocoResult { ImageId = 1, CategoryId = 1, Score = 1, Segmentation = CocoSegmentation.FromRle(mask), Bbox = new double[] { 0, 0, 150, 150 } };
        var unmatched = new CocoResult { ImageId = 1, CategoryId = 1, Score = 2, Segmentation = CocoSegmentation.FromRle(Rle.FromBbox(new double[] { 100, 100, 5, 5 }, 200, 200)), Bbox = new double[] { 0, 0, 150, 150 } };
        s = CocoEvaluator.Evaluate(gt, new[] { unmatched, r }, CocoIouType.Segm).Stats;
        Assert.Equal(1.0, s[3], Tol);  // in 'small' the unmatched FP counts as large (bbox area) and is ignored
        Assert.Equal(0.5, s[1], Tol);  // in 'all' it is a FP ranked first
    }

    [Fact]
    public void Summary_IsFormattedAsPycocotools()
    {
        var gt = Gt(1, (1, 1, 1, new double[] { 0, 0, 10, 10 }, 100, 0));
        var lines = CocoEvaluator.Evaluate(gt, new[] { Det(1, 1, .9, 0, 0, 10, 10) }, CocoIouType.Bbox).Summary().Split('\n');
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000", lines[0]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 1.000", lines[1]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000", lines[4]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 1.000", lines[6]);
    }

    [Fact]
    public void PyNum_MatchesNumpyAndPython()
    {
        var thr = PyNum.Linspace(.5, .95, 10);
        Assert.Equal(0.75, thr[5]);
        Assert.Equal(0.8999999999999999, thr[8]);   // numpy prints the same
        Assert.Equal(0.95, thr[9]);
        // Python: format(0.0625, '.3f') == '0.062' (exact tie -> even), format(0.0005, '.3f') == '0.001' (0.0005 is above the tie in binary)
        Assert.Equal("0.062", PyNum.Fixed(0.0625, 3));
        Assert.Equal("0.001", PyNum.Fixed(0.0005, 3));
        Assert.Equal("-1.000", PyNum.Fixed(-1, 3));
        Assert.Equal("30.0", PyNum.Fixed(100 * 0.3, 1));
        // pairwise: 1e16 + 1 + 1 + ... order matters; for n < 8 numpy adds left to right
        Assert.Equal(1e16, PyNum.PairwiseSum(new[] { 1e16, 1, 1 }));
        // n = 8: ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)) -> (1e16+1) + (1+1) ... = 1e16 + 2 + 4 = 1e16+6? computed by hand:
        // r pairs: (1e16+1)=1e16, (1+1)=2 -> 1e16+2 ; (1+1)+(1+1)=4 -> 1e16+2+4 = 1e16+6
        Assert.Equal(1e16 + 6, PyNum.PairwiseSum(new[] { 1e16, 1, 1, 1, 1, 1, 1, 1 }));
    }
}

public class CocoEvaluatorDeterminismTests
{
    [Fact]
    public void ParallelAndSequentialRuns_GiveBitIdenticalResults()
    {
        var rng = new Random(5);
        var gt = new CocoDataset();
        gt.Categories.Add(new CocoCategory(1, "a"));
        gt.Categories.Add(new CocoCategory(2, "b"));
        var dts = new List<CocoResult>();
        long id = 1;
        for (int i = 1; i <= 40; i++)
        {
            gt.Images.Add(new CocoImage(i, 64, 64, ""));
            for (int g = 0; g < 4; g++)
            {
                var box = new double[] { rng.Next(40), rng.Next(40), 3 + rng.Next(30), 3 + rng.Next(30) };
                var m = Rle.FromBbox(box, 64, 64);
                int cat = 1 + rng.Next(2);
                gt.Annotations.Add(new CocoAnnotation { Id = id++, ImageId = i, CategoryId = cat, Bbox = m.ToBbox(), Area = m.Area, IsCrowd = rng.Next(10) == 0 ? 1 : 0, Segmentation = CocoSegmentation.FromRle(m) });
                for (int d = 0; d < 6; d++)
                {
                    var db = new double[] { box[0] + rng.Next(-4, 5), box[1] + rng.Next(-4, 5), box[2] + rng.Next(-4, 5), box[3] + rng.Next(-4, 5) };
                    dts.Add(new CocoResult { ImageId = i, CategoryId = d < 5 ? cat : 3 - cat, Score = rng.Next(20) / 20.0, Segmentation = CocoSegmentation.FromRle(Rle.FromBbox(db, 64, 64)) });
                }
            }
        }
        var seq = CocoEvaluator.Evaluate(gt, dts, CocoIouType.Segm, maxDegreeOfParallelism: 1);
        var par = CocoEvaluator.Evaluate(gt, dts, CocoIouType.Segm, maxDegreeOfParallelism: 4);
        Assert.Equal(seq.Precision, par.Precision);
        Assert.Equal(seq.Stats, par.Stats);
        Assert.InRange(seq.Stats[0], 0.1, 0.99); // a non-trivial case
    }
}
