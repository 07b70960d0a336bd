using DiffEgg.Common;
using DiffEgg.Evaluation;
using DiffEgg.Formats;

namespace DiffEgg.Tests.Coco;

/// <summary>Two small images whose PQ is derived by hand from panopticapi's rules.</summary>
public class PanopticEvaluatorTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-pq-", "d");
    internal string Dir => _temp.Path;
    public void Dispose() => _temp.Dispose();

    internal static int[] Grid(int w, int h, Func<int, int, int> f)
    {
        var a = new int[w * h];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) a[y * w + x] = f(x, y);
        return a;
    }

    /// <summary>Writes gt/pred folders + JSONs. Image 1 (5x4): gt 1 = cols 0-1 (cat 1, thing), gt 2 = cols 2-3 (cat 2, stuff), col 4 void.
    /// pred 10 (cat 1) = cols 0-1 rows 0-2 + col 4 rows 0-1 -> inter 6, void 2, union 8+8-6-2 = 8, IoU .75 (TP);
    /// pred 20 (cat 2) = cols 2-3 rows 0-1 -> IoU 4/8 = .5, not > .5: FN + FP; pred 30 (cat 1) = cols 2-3 rows 2-3 -> FP.
    /// Image 2 (4x2): gt 5 = cols 0-1 crowd (cat 1), gt 6 = cols 2-3 (cat 1); pred 7 (cat 1) = cols 0-1 + (2,0): 4 of 5 px in crowd -> not FP;
    /// pred 8 (cat 1) = (2,1) + col 3 -> IoU 3/4 (TP).</summary>
    internal (string gtJson, string gtDir, string predJson, string predDir) WriteCase(Action<PanopticDataset>? editPred = null)
    {
        string gtDir = Path.Combine(Dir, "gt"), predDir = Path.Combine(Dir, "pred");
        Directory.CreateDirectory(gtDir); Directory.CreateDirectory(predDir);
        PanopticFiles.WritePng(Path.Combine(gtDir, "1.png"), Grid(5, 4, (x, y) => x < 2 ? 1 : x < 4 ? 2 : 0), 5, 4);
        PanopticFiles.WritePng(Path.Combine(predDir, "1.png"), Grid(5, 4, (x, y) =>
            x < 2 ? (y < 3 ? 10 : 0) : x < 4 ? (y < 2 ? 20 : 30) : (y < 2 ? 10 : 0)), 5, 4);
        PanopticFiles.WritePng(Path.Combine(gtDir, "2.png"), Grid(4, 2, (x, y) => x < 2 ? 5 : 6), 4, 2);
        PanopticFiles.WritePng(Path.Combine(predDir, "2.png"), Grid(4, 2, (x, y) => x < 2 || (x == 2 && y == 0) ? 7 : 8), 4, 2);
        var cats = new List<CocoCategory> { new(1, "thing", null, 1), new(2, "stuff", null, 0), new(3, "unused", null, 1) };
        var gt = new PanopticDataset { Categories = cats };
        gt.Images.Add(new CocoImage(1, 5, 4, "1.jpg"));
        gt.Images.Add(new CocoImage(2, 4, 2, "2.jpg"));
        gt.Annotations.Add(new PanopticAnnotation { ImageId = 1, FileName = "1.png", Segments = { new() { Id = 1, CategoryId = 1, Area = 8 }, new() { Id = 2, CategoryId = 2, Area = 8 } } });
        gt.Annotations.Add(new PanopticAnnotation { ImageId = 2, FileName = "2.png", Segments = { new() { Id = 5, CategoryId = 1, Area = 4, IsCrowd = 1 }, new() { Id = 6, CategoryId = 1, Area = 4 } } });
        var pred = new PanopticDataset { Categories = cats };
        pred.Annotations.Add(new PanopticAnnotation { ImageId = 1, FileName = "1.png", Segments = { new() { Id = 10, CategoryId = 1 }, new() { Id = 20, CategoryId = 2 }, new() { Id = 30, CategoryId = 1 } } });
        pred.Annotations.Add(new PanopticAnnotation { ImageId = 2, FileName = "2.png", Segments = { new() { Id = 7, CategoryId = 1 }, new() { Id = 8, CategoryId = 1 } } });
        editPred?.Invoke(pred);
        string gj = Path.Combine(Dir, "gt.json"), pj = Path.Combine(Dir, "pred.json");
        PanopticFiles.WriteJson(gj, gt);
        PanopticFiles.WriteJson(pj, pred);
        return (gj, gtDir, pj, predDir);
    }

    static PanopticEvalResult Run((string gj, string gd, string pj, string pd) c) =>
        PanopticEvaluator.Evaluate(PanopticFiles.ReadJson(c.gj, true), c.gd, PanopticFiles.ReadJson(c.pj, false), c.pd, c.gj, c.pj);

    [Fact]
    public void HandDerivedCase_VoidCrowdAndThreshold()
    {
        var r = Run(WriteCase());
        // cat 1: tp 2 (IoU .75 + .75), fp 1, fn 0 -> PQ 1.5/2.5 = .6, SQ .75, RQ .8 ; cat 2: tp 0 fp 1 fn 1 -> 0 ; cat 3 absent
        Assert.Equal(new PqValues(0.3, 0.375, 0.4, 2), r.All);
        Assert.Equal(new PqValues(1.5 / 2.5, 0.75, 2 / 2.5, 1), r.Things);
        Assert.Equal(new PqValues(0, 0, 0, 1), r.Stuff);
        Assert.Equal((3L, 0.0, 0.0, 0.0), r.PerClass[2]);
        var lines = r.Table().Split('\n');
        Assert.Equal("          |    PQ     SQ     RQ     N", lines[0]);
        Assert.Equal(new string('-', 38), lines[1]);
        Assert.Equal("All       |  30.0   37.5   40.0     2", lines[2]);
        Assert.Equal("Things    |  60.0   75.0   80.0     1", lines[3]);
    }

    [Fact]
    public void PredictionInconsistencies_AreErrorsLikePanopticapi()
    {
        // segment 30 in the PNG but not in the JSON
        var e = Assert.Throws<DiffEggException>(() => Run(WriteCase(p => p.Annotations[0].Segments.RemoveAt(2))));
        Assert.Contains("segment with id 30 is present in the PNG and not present", e.Message);
        // a JSON segment absent from the PNG
        e = Assert.Throws<DiffEggException>(() => Run(WriteCase(p => p.Annotations[1].Segments.Add(new PanopticSegment { Id = 99, CategoryId = 1 }))));
        Assert.Contains("[99]", e.Message);
        // unknown category
        e = Assert.Throws<DiffEggException>(() => Run(WriteCase(p => p.Annotations[1].Segments[1] = new PanopticSegment { Id = 8, CategoryId = 42 })));
        Assert.Contains("unknown category_id 42", e.Message);
        // missing prediction for an image
        e = Assert.Throws<DiffEggException>(() => Run(WriteCase(p => p.Annotations.RemoveAt(1))));
        Assert.Contains("no prediction for the image with id 2", e.Message);
    }

    [Fact]
    public void PngSizeDisagreeingWithJson_IsAnError()
    {
        var c = WriteCase();
        PanopticFiles.WritePng(Path.Combine(c.gtDir, "2.png"), new int[6], 3, 2);
        var e = Assert.Throws<DiffEggException>(() => Run(c));
        Assert.Contains("2.png", e.Message);
        Assert.Contains("4x2", e.Message);
    }
}
