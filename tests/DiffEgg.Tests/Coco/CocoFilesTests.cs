using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Tests.Coco;

public class CocoFilesTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-coco-");
    string _dir => _temp.Path;
    public void Dispose() => _temp.Dispose();

    string Write(string name, string text) { var p = Path.Combine(_dir, name); File.WriteAllText(p, text); return p; }

    const string Images = "\"images\":[{\"id\":1,\"width\":4,\"height\":3,\"file_name\":\"a.png\"}]";
    const string Cats = "\"categories\":[{\"id\":1,\"name\":\"x\"}]";

    [Fact]
    public void Instances_RoundTrip_AllSegmentationKinds()
    {
        var ds = new CocoDataset();
        ds.Images.Add(new CocoImage(1, 4, 3, "a.png"));
        ds.Categories.Add(new CocoCategory(1, "x", "s"));
        var rle = Rle.Encode(new byte[] { 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1 }, 3, 4);
        ds.Annotations.Add(new CocoAnnotation { Id = 1, ImageId = 1, CategoryId = 1, Area = 2.5, IsCrowd = 0, Bbox = new double[] { 0, 0, 1.5, 2 }, Segmentation = CocoSegmentation.FromPolygons(new[] { new double[] { 0, 0, 1.5, 0, 1.5, 2 } }) });
        ds.Annotations.Add(new CocoAnnotation { Id = 2, ImageId = 1, CategoryId = 1, Area = 5, IsCrowd = 1, Segmentation = CocoSegmentation.FromRle(rle, compressed: false) });
        ds.Annotations.Add(new CocoAnnotation { Id = 3, ImageId = 1, CategoryId = 1, Area = 5, IsCrowd = 0, Segmentation = CocoSegmentation.FromRle(rle) });
        string p = Path.Combine(_dir, "gt.json");
        CocoFiles.WriteInstances(p, ds);
        var back = CocoFiles.ReadInstances(p);
        Assert.Equal(3, back.Annotations.Count);
        Assert.Equal(new double[] { 0, 0, 1.5, 0, 1.5, 2 }, back.Annotations[0].Segmentation!.Polygons![0]);
        Assert.Equal(2.5, back.Annotations[0].Area);
        Assert.Equal(CocoSegmentationKind.UncompressedRle, back.Annotations[1].Segmentation!.Kind);
        Assert.Equal(rle, back.Annotations[1].Segmentation!.Rle);
        Assert.Equal(1, back.Annotations[1].IsCrowd);
        Assert.Equal(CocoSegmentationKind.CompressedRle, back.Annotations[2].Segmentation!.Kind);
        Assert.Equal(rle, back.Annotations[2].Segmentation!.Rle);
        Assert.Contains("\"counts\":\"" + rle.ToCompressedString() + "\"", File.ReadAllText(p));

        var res = new List<CocoResult> { new() { ImageId = 1, CategoryId = 1, Score = 0.25, Segmentation = CocoSegmentation.FromRle(rle) }, new() { ImageId = 1, CategoryId = 1, Score = 0.5, Bbox = new double[] { 1, 2, 3, 4 } } };
        string rp = Path.Combine(_dir, "res.json");
        CocoFiles.WriteResults(rp, res);
        var rb = CocoFiles.ReadResults(rp, back);
        Assert.Equal(rle, rb[0].Segmentation!.Rle);
        Assert.Equal(0.25, rb[0].Score);
        Assert.Equal(new double[] { 1, 2, 3, 4 }, rb[1].Bbox);
    }

    [Theory]
    [InlineData("{" + Images + ",\"annotations\":[{\"id\":5,\"image_id\":1,\"category_id\":1,\"iscrowd\":0,\"bbox\":[0,0,1,1]}]," + Cats + "}", "annotations[0] (id 5)", "'area'")]
    [InlineData("{" + Images + ",\"annotations\":[{\"id\":5,\"image_id\":\"1\",\"category_id\":1,\"area\":1,\"iscrowd\":0}]," + Cats + "}", "annotations[0] (id 5)", "'image_id'")]
    [InlineData("{" + Images + ",\"annotations\":[{\"id\":5,\"image_id\":9,\"category_id\":1,\"area\":1,\"iscrowd\":0}]," + Cats + "}", "annotations[0] (id 5)", "image id 9")]
    [InlineData("{" + Images + ",\"annotations\":[{\"id\":5,\"image_id\":1,\"category_id\":1,\"area\":1,\"iscrowd\":0,\"segmentation\":{\"size\":[3,4],\"counts\":[1,2,3]}}]," + Cats + "}", "annotations[0] (id 5)", "'segmentation.counts'")]
    [InlineData("{" + Images + ",\"annotations\":[{\"id\":5,\"image_id\":1,\"category_id\":1,\"area\":1,\"iscrowd\":0,\"segmentation\":{\"size\":[4,4],\"counts\":[16]}}]," + Cats + "}", "annotations[0] (id 5)", "'segmentation.size'")]
    [InlineData("{" + Images + ",\"annotations\":[{\"id\":5,\"image_id\":1,\"category_id\":1,\"area\":1,\"iscrowd\":0,\"segmentation\":[[0,0,1,\"a\",2,2]]}]," + Cats + "}", "annotations[0] (id 5)", "segmentation[0][3]")]
    [InlineData("{\"images\":[{\"id\":1,\"width\":4}],\"annotations\":[]," + Cats + "}", "images[0] (id 1)", "'height'")]
    [InlineData("{" + Images + "," + Cats + "}", "top level", "'annotations'")]
    public void Instances_MalformedInput_NamesFileRecordAndField(string json, string record, string field)
    {
        var p = Write("bad.json", json);
        var e = Assert.Throws<DiffEggException>(() => CocoFiles.ReadInstances(p));
        Assert.Contains(p, e.Message);
        Assert.Contains(record, e.Message);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void Results_UnknownImageOrMissingScore_AreErrors()
    {
        var gt = CocoFiles.ReadInstances(Write("gt.json", "{" + Images + ",\"annotations\":[]," + Cats + "}"));
        var p = Write("r1.json", "[{\"image_id\":1,\"category_id\":1,\"bbox\":[0,0,1,1],\"score\":0.5},{\"image_id\":3,\"category_id\":1,\"bbox\":[0,0,1,1],\"score\":0.5}]");
        var e = Assert.Throws<DiffEggException>(() => CocoFiles.ReadResults(p, gt));
        Assert.Contains("result [1]", e.Message);
        Assert.Contains("image id 3", e.Message);
        p = Write("r2.json", "[{\"image_id\":1,\"category_id\":1,\"bbox\":[0,0,1,1]}]");
        e = Assert.Throws<DiffEggException>(() => CocoFiles.ReadResults(p, gt));
        Assert.Contains("'score'", e.Message);
        p = Write("r3.json", "{\"not\":\"a list\"}");
        Assert.Contains("list", Assert.Throws<DiffEggException>(() => CocoFiles.ReadResults(p, gt)).Message);
        p = Write("r4.json", "[{\"image_id\":1,");
        Assert.Contains("not valid JSON", Assert.Throws<DiffEggException>(() => CocoFiles.ReadResults(p, gt)).Message);
    }

    [Fact]
    public void Panoptic_JsonAndPng_RoundTrip()
    {
        var ids = new[] { 0, 1, 256, 65536, 16777215, 300 };
        string png = Path.Combine(_dir, "p.png");
        PanopticFiles.WritePng(png, ids, 3, 2);
        Assert.Equal(ids, PanopticFiles.ReadPng(png, out int w, out int h));
        Assert.Equal((3, 2), (w, h));
        var ds = new PanopticDataset();
        ds.Images.Add(new CocoImage(7, 3, 2, "p.jpg"));
        ds.Categories.Add(new CocoCategory(1, "thing", null, 1));
        ds.Categories.Add(new CocoCategory(2, "stuff", null, 0));
        ds.Annotations.Add(new PanopticAnnotation { ImageId = 7, FileName = "p.png", Segments = { new PanopticSegment { Id = 1, CategoryId = 1, Area = 1, IsCrowd = 0 }, new PanopticSegment { Id = 256, CategoryId = 2, Area = 1, IsCrowd = 1 } } });
        string j = Path.Combine(_dir, "pan.json");
        PanopticFiles.WriteJson(j, ds);
        var back = PanopticFiles.ReadJson(j, groundTruth: true);
        Assert.Equal(0, back.Categories[1].IsThing);
        Assert.Equal(256, back.Annotations[0].Segments[1].Id);
        Assert.Equal(1, back.Annotations[0].Segments[1].IsCrowd);

        var cls = new byte[] { 0, 1, 255, 2, 2, 0 };
        string cp = Path.Combine(_dir, "c.png");
        PanopticFiles.WriteClassIdPng(cp, cls, 3, 2);
        Assert.Equal(cls, PanopticFiles.ReadClassIdPng(cp, out _, out _));
        Assert.Throws<DiffEggException>(() => PanopticFiles.ReadClassIdPng(png, out _, out _)); // RGB, not single-channel
    }
}
