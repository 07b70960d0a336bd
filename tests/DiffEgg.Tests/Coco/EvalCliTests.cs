using DiffEgg.Tests.Cli;
using System.Text.Json;
using DiffEgg.Cli;

namespace DiffEgg.Tests.Coco;

[Collection("Cli")]
public class EvalCliTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-cli-");
    string _dir => _temp.Path;
    public void Dispose() => _temp.Dispose();

    string Write(string name, string text) { var p = Path.Combine(_dir, name); File.WriteAllText(p, text); return p; }

    const string Gt = "{\"images\":[{\"id\":1,\"width\":40,\"height\":30,\"file_name\":\"a.png\"}]," +
        "\"annotations\":[{\"id\":1,\"image_id\":1,\"category_id\":1,\"area\":100,\"iscrowd\":0,\"bbox\":[0,0,10,10],\"segmentation\":[[0,0,0,10,10,10,10,0]]}]," +
        "\"categories\":[{\"id\":1,\"name\":\"x\"}]}";

    [Fact]
    public void Instances_WritesJsonStats()
    {
        string gt = Write("gt.json", Gt);
        // a polygon box and the same box as a result: segm IoU 1
        string dt = Write("dt.json", "[{\"image_id\":1,\"category_id\":1,\"bbox\":[0,0,10,10],\"score\":0.9}]");
        string outJson = Path.Combine(_dir, "out.json");
        Assert.Equal(0, DiffEggApp.Run(new[] { "eval", "instances", "--gt", gt, "--dt", dt, "--json", outJson }));
        using var doc = JsonDocument.Parse(File.ReadAllText(outJson));
        Assert.Equal(1.0, doc.RootElement.GetProperty("AP50").GetDouble(), 12);
        Assert.Equal(-1.0, doc.RootElement.GetProperty("APm").GetDouble());
        Assert.Equal(12, doc.RootElement.EnumerateObject().Count());
        Assert.Equal(0, DiffEggApp.Run(new[] { "eval", "instances", "--gt", gt, "--dt", dt, "--iou-type", "bbox", "--json", outJson }));
    }

    [Fact]
    public void Instances_MalformedFiles_ExitNonZero()
    {
        string gt = Write("gt.json", Gt);
        string bad = Write("bad.json", "[{\"image_id\":1,\"category_id\":1,\"bbox\":[0,0,10],\"score\":0.9}]");
        string kept = Write("kept.json", "previous");   // an existing --json output is left as it was
        CliRun.Fails(1, new[] { "eval", "instances", "--gt", gt, "--dt", bad, "--json", kept }, new[] { bad, "bbox" }, new[] { kept });
        CliRun.Fails(1, new[] { "eval", "instances", "--gt", Path.Combine(_dir, "missing.json"), "--dt", bad }, new[] { Path.Combine(_dir, "missing.json") });
        CliRun.Fails(2, new[] { "eval", "instances", "--gt", gt, "--dt", bad, "--iou-type", "keypoints" }, new[] { "--iou-type", "keypoints" });
        Assert.False(File.Exists(Path.Combine(_dir, "out.json")));
    }

    [Fact]
    public void Panoptic_WritesJson_AndFailsOnBadPrediction()
    {
        using var pq = new PanopticEvaluatorTests();
        var (gj, gd, pj, pd) = pq.WriteCase();
        string outJson = Path.Combine(_dir, "pq.json");
        Assert.Equal(0, DiffEggApp.Run(new[] { "eval", "panoptic", "--gt-json", gj, "--gt-dir", gd, "--pred-json", pj, "--pred-dir", pd, "--json", outJson }));
        using (var doc = JsonDocument.Parse(File.ReadAllText(outJson)))
        {
            Assert.Equal(0.3, doc.RootElement.GetProperty("All").GetProperty("pq").GetDouble());
            Assert.Equal(2, doc.RootElement.GetProperty("All").GetProperty("n").GetInt32());
            Assert.Equal(0.75, doc.RootElement.GetProperty("per_class").GetProperty("1").GetProperty("sq").GetDouble());
        }
        File.WriteAllText(pj, "{\"annotations\":[{\"image_id\":1}]}");
        byte[] previous = File.ReadAllBytes(outJson);
        CliRun.Fails(1, new[] { "eval", "panoptic", "--gt-json", gj, "--gt-dir", gd, "--pred-json", pj, "--pred-dir", pd, "--json", outJson }, new[] { pj }, new[] { outJson });
        Assert.Equal(previous, File.ReadAllBytes(outJson));
    }
}

public class EvalErrorNamingTests
{
    [Fact]
    public void EvaluationErrors_NameTheFileRecordAndField()
    {
        var gt = new DiffEgg.Formats.CocoDataset();
        gt.Images.Add(new DiffEgg.Formats.CocoImage(1, 10, 10, ""));
        gt.Categories.Add(new DiffEgg.Formats.CocoCategory(1, "a"));
        gt.Annotations.Add(new DiffEgg.Formats.CocoAnnotation { Id = 3, ImageId = 1, CategoryId = 1, Area = 4, Bbox = new double[] { 0, 0, 2, 2 } });
        var dt = new[] { new DiffEgg.Formats.CocoResult { ImageId = 1, CategoryId = 1, Score = 1, Bbox = new double[] { 0, 0, 2, 2 } } };
        var e = Assert.Throws<DiffEgg.Common.DiffEggException>(() => DiffEgg.Evaluation.CocoEvaluator.Evaluate(gt, dt, DiffEgg.Evaluation.CocoIouType.Segm, gtName: "gt.json", resultsName: "dt.json"));
        Assert.Equal("gt.json: annotation id 3: field 'segmentation': missing (needed for --iou-type segm)", e.Message);
        // the first result has a bbox -> every result must have one (pycocotools loadRes)
        var mixed = new[] { dt[0], new DiffEgg.Formats.CocoResult { ImageId = 1, CategoryId = 1, Score = 1, Segmentation = DiffEgg.Formats.CocoSegmentation.FromRle(DiffEgg.Formats.Rle.Empty(10, 10)) } };
        e = Assert.Throws<DiffEgg.Common.DiffEggException>(() => DiffEgg.Evaluation.CocoEvaluator.Evaluate(gt, mixed, DiffEgg.Evaluation.CocoIouType.Bbox, gtName: "gt.json", resultsName: "dt.json"));
        Assert.StartsWith("dt.json: result [1]: field 'bbox': missing", e.Message);
    }
}
