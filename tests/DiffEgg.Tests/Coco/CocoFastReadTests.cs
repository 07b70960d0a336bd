using System.Text;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Tests.Coco;

/// <summary>The one-pass UTF-8 readers give what the strict JsonDocument readers give, and leave every defect to them.</summary>
public class CocoFastReadTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-fast-");
    string _dir => _temp.Path;
    public void Dispose() => _temp.Dispose();

    // counts whose compressed strings hold '\' and '<', which JSON writers escape ("\\", "\u003C")
    static readonly Rle Escaped = new(10, 10, new uint[] { 44, 5, 51 });
    static readonly Rle Angle = new(10, 10, new uint[] { 12, 5, 83 });

    static string Quoted(string s) => JsonSerializer.Serialize(s);

    static string Instances() =>
        "{\"info\":{\"year\":2024,\"nested\":[1,[2,{\"x\":null}]]}," +
        // annotations before images: every kind of segmentation, integral floats, boolean and numeric iscrowd, null bbox, unknown keys
        "\"annotations\":[" +
        "{\"segmentation\":{\"counts\":" + Quoted(Escaped.ToCompressedString()) + ",\"size\":[10,10],\"extra\":1},\"id\":1,\"image_id\":1,\"category_id\":1,\"area\":49.5,\"iscrowd\":0,\"bbox\":[0,0,5,5]}," +
        "{\"id\":2.0,\"image_id\":1,\"category_id\":2,\"segmentation\":{\"size\":[10.0,10],\"counts\":[0,50,50]},\"area\":50,\"iscrowd\":true,\"bbox\":null}," +
        "{\"id\":3,\"image_id\":2,\"category_id\":1,\"segmentation\":[[0,0,4,0,4,4.5],[1,1,2,1,2,2]],\"area\":1e1,\"iscrowd\":false}," +
        "{\"id\":4,\"image_id\":2,\"category_id\":1,\"segmentation\":[[0,0,2,2],[1,1,3,3]],\"area\":4,\"iscrowd\":2,\"comment\":\"x\"}," +
        "{\"id\":5,\"image_id\":1,\"category_id\":1,\"segmentation\":null,\"area\":0,\"iscrowd\":0,\"bbox\":[1,2,3,4]}," +
        "{\"id\":6,\"image_id\":1,\"category_id\":1,\"segmentation\":{\"size\":[10,10],\"counts\":" + Quoted(Angle.ToCompressedString()) + "},\"area\":5,\"iscrowd\":0}" +
        "]," +
        "\"images\":[{\"id\":1,\"width\":10,\"height\":10,\"file_name\":\"a\\u00e9.png\"},{\"height\":8,\"id\":2,\"width\":6,\"file_name\":null,\"license\":3}]," +
        "\"categories\":[{\"id\":1,\"name\":\"one\",\"supercategory\":\"s\"},{\"id\":2,\"name\":null,\"isthing\":0},{\"id\":3,\"isthing\":true,\"supercategory\":null}]}";

    static string Results() =>
        "[{\"segmentation\":{\"size\":[10,10],\"counts\":" + Quoted(Escaped.ToCompressedString()) + "},\"score\":0.25,\"image_id\":1,\"category_id\":1}," +
        "{\"image_id\":1,\"category_id\":7,\"bbox\":[1,2,3,4.5],\"score\":1,\"segmentation\":null,\"other\":[{}]}," +
        "{\"image_id\":2,\"category_id\":1,\"score\":0.5,\"segmentation\":[[0,0,4,0,4,4]]}," +
        "{\"image_id\":1.0,\"category_id\":1,\"score\":0.75,\"segmentation\":{\"size\":[10,10],\"counts\":[12,5,83]},\"bbox\":[0,0,1,1]}]";

    static byte[] Bytes(string json, bool bom = false) => (bom ? new byte[] { 0xEF, 0xBB, 0xBF } : Array.Empty<byte>()).Concat(Encoding.UTF8.GetBytes(json)).ToArray();

    static void AssertSameSegmentation(CocoSegmentation? expected, CocoSegmentation? actual)
    {
        if (expected == null) { Assert.Null(actual); return; }
        Assert.NotNull(actual);
        Assert.Equal(expected.Kind, actual!.Kind);
        Assert.Equal(expected.Rle, actual.Rle);
        if (expected.Polygons == null) Assert.Null(actual.Polygons);
        else Assert.Equal(expected.Polygons.Select(p => p.ToList()), actual.Polygons!.Select(p => p.ToList()));
    }

    static void AssertSameInstances(CocoDataset expected, CocoDataset actual)
    {
        Assert.Equal(expected.Images, actual.Images);
        Assert.Equal(expected.Categories, actual.Categories);
        Assert.Equal(expected.Annotations.Count, actual.Annotations.Count);
        for (int i = 0; i < expected.Annotations.Count; i++)
        {
            var e = expected.Annotations[i];
            var a = actual.Annotations[i];
            Assert.Equal((e.Id, e.ImageId, e.CategoryId, e.Area, e.IsCrowd), (a.Id, a.ImageId, a.CategoryId, a.Area, a.IsCrowd));
            Assert.Equal(e.Bbox, a.Bbox);
            AssertSameSegmentation(e.Segmentation, a.Segmentation);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Instances_SameAsStrictReader(bool bom)
    {
        var bytes = Bytes(Instances(), bom);
        var fast = CocoFastRead.TryReadInstances(bytes);
        Assert.NotNull(fast); // the fast path handles every kind of valid input, so the speed does not depend on the writer
        var strict = CocoFiles.ReadInstancesStrict("gt.json", bytes);
        AssertSameInstances(strict, fast!);
        Assert.Equal(Escaped, fast!.Annotations[0].Segmentation!.Rle);
        Assert.Equal(Angle, fast.Annotations[5].Segmentation!.Rle);
        Assert.Equal("aé.png", fast.Images[0].FileName);
        Assert.Equal(new[] { "one", "2", "3" }, fast.Categories.Select(c => c.Name));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Results_SameAsStrictReader(bool bom)
    {
        var gt = CocoFiles.ReadInstancesStrict("gt.json", Bytes(Instances()));
        var bytes = Bytes(Results(), bom);
        var fast = CocoFastRead.TryReadResults(bytes, gt);
        Assert.NotNull(fast);
        var strict = CocoFiles.ReadResultsStrict("dt.json", bytes, gt);
        Assert.Equal(strict.Count, fast!.Count);
        for (int i = 0; i < strict.Count; i++)
        {
            Assert.Equal((strict[i].ImageId, strict[i].CategoryId, strict[i].Score), (fast[i].ImageId, fast[i].CategoryId, fast[i].Score));
            Assert.Equal(strict[i].Bbox, fast[i].Bbox);
            AssertSameSegmentation(strict[i].Segmentation, fast[i].Segmentation);
        }
        Assert.Equal(Escaped, fast[0].Segmentation!.Rle);
    }

    const string Images = "\"images\":[{\"id\":1,\"width\":4,\"height\":3}]";
    const string Cats = "\"categories\":[{\"id\":1,\"name\":\"x\"}]";
    const string Ann = "\"id\":5,\"image_id\":1,\"category_id\":1,\"area\":1,\"iscrowd\":0";

    [Theory]
    [InlineData("{" + Images + ",\"annotations\":[{\"id\":5,\"image_id\":1,\"category_id\":1,\"iscrowd\":0}]," + Cats + "}", "'area'")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + ",\"segmentation\":{\"size\":[3,4],\"counts\":[1,2,3]}}]," + Cats + "}", "'segmentation.counts'")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + ",\"segmentation\":{\"size\":[4,4],\"counts\":[16]}}]," + Cats + "}", "'segmentation.size'")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + ",\"segmentation\":{\"size\":[3,4],\"counts\":\"3a\"}}]," + Cats + "}", "'segmentation.counts'")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + ",\"segmentation\":{\"size\":[3,4],\"counts\":\"<\\u0080\"}}]," + Cats + "}", "invalid character")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + ",\"segmentation\":[]}]," + Cats + "}", "empty polygon list")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + ",\"segmentation\":[[0,0,1,1],[0,0,1,1,2,2]]}]," + Cats + "}", "segmentation[1]")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + ",\"bbox\":[0,0,1]}]," + Cats + "}", "'bbox'")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + "},{" + Ann + "}]," + Cats + "}", "duplicate annotation id 5")]
    [InlineData("{" + Images + ",\"annotations\":[{" + Ann + ",\"iscrowd\":0.5}]," + Cats + "}", "'iscrowd'")]
    [InlineData("{\"images\":[{\"id\":1,\"width\":0,\"height\":3}],\"annotations\":[]," + Cats + "}", "'width'")]
    [InlineData("{" + Images + ",\"annotations\":[],\"categories\":[{\"id\":1},{\"id\":1}]}", "duplicate category id 1")]
    [InlineData("{" + Images + ",\"annotations\":[]," + Cats + "} x", "not valid JSON")]
    public void Instances_Defects_AreLeftToTheStrictReader(string json, string message)
    {
        Assert.Null(CocoFastRead.TryReadInstances(Bytes(json)));
        var p = Path.Combine(_dir, "bad.json");
        File.WriteAllText(p, json);
        var e = Assert.Throws<DiffEggException>(() => CocoFiles.ReadInstances(p));
        Assert.Contains(p, e.Message);
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":0.5}]", "result [0]", "'segmentation'")]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":\"0.5\",\"bbox\":[0,0,1,1]}]", "result [0]", "'score'")]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":0.5,\"bbox\":[0,0,1,1]},{\"image_id\":2,\"category_id\":1,\"score\":0.5,\"bbox\":[0,0,1,1]}]", "result [1]", "image id 2")]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":0.5,\"segmentation\":{\"size\":[3,4],\"counts\":\"00\"}}]", "result [0]", "'segmentation.counts'")]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":0.5,\"segmentation\":{\"size\":[4,3],\"counts\":[12]}}]", "result [0]", "'segmentation.size'")]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":0.5,\"segmentation\":{\"counts\":[12]}}]", "result [0]", "'size'")]
    [InlineData("[1]", "result [0]", "expected an object")]
    // a bad compressed counts string, a missing field, a wrong type, a number beyond the double range: record and field named
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":0.5,\"bbox\":[0,0,1,1]},{\"image_id\":1,\"category_id\":1,\"score\":0.5,\"segmentation\":{\"size\":[3,4],\"counts\":\"3 \"}}]", "result [1]", "'segmentation.counts': compressed RLE string has an invalid character ' '")]
    [InlineData("[{\"image_id\":1,\"score\":0.5,\"bbox\":[0,0,1,1]}]", "result [0]", "'category_id': missing")]
    [InlineData("[{\"image_id\":1,\"category_id\":[1],\"score\":0.5,\"bbox\":[0,0,1,1]}]", "result [0]", "'category_id': expected an integer, got an array")]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":1e400,\"bbox\":[0,0,1,1]}]", "result [0]", "'score': value 1e400 is not finite")]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":0.5,\"bbox\":[0,0,1,-1e999]}]", "result [0]", "'bbox[3]': value -1e999 is not finite")]
    [InlineData("[{\"image_id\":1,\"category_id\":1,\"score\":0.5,\"segmentation\":{\"size\":[3,4],\"counts\":[12,\"0\"]}}]", "result [0]", "'segmentation.counts[1]': expected an integer, got a string")]
    public void Results_Defects_AreLeftToTheStrictReader(string json, string record, string field)
    {
        var gt = CocoFiles.ReadInstancesStrict("gt.json", Bytes("{" + Images + ",\"annotations\":[]," + Cats + "}"));
        Assert.Null(CocoFastRead.TryReadResults(Bytes(json), gt));
        var p = Path.Combine(_dir, "bad-results.json");
        File.WriteAllText(p, json);
        var e = Assert.Throws<DiffEggException>(() => CocoFiles.ReadResults(p, gt));
        Assert.Contains(p, e.Message);
        Assert.Contains(record, e.Message);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void CompressedCounts_DecodeFromBytesAsFromStrings()
    {
        var rng = new Random(5);
        for (int n = 0; n < 200; n++)
        {
            var counts = new uint[1 + rng.Next(40)];
            long sum = 0;
            for (int i = 0; i < counts.Length; i++) { counts[i] = (uint)(i == 0 ? rng.Next(3) : 1 + rng.Next(i % 7 == 0 ? 100000 : 50)); sum += counts[i]; }
            var rle = new Rle(1, (int)sum, counts);
            string s = rle.ToCompressedString();
            var scratch = new uint[1];
            Assert.Equal(Rle.CompressedStatus.Ok, Rle.DecodeCompressed<byte>(Encoding.ASCII.GetBytes(s), ref scratch, out int count, out _, out _));
            Assert.Equal(counts, scratch[..count]);
            Assert.Equal(rle, Rle.FromCompressedString(s, 1, (int)sum));
        }
    }
}
