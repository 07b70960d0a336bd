using System.Text.Json;
using DiffEgg.Data;
using DiffEgg.Data.Synthetic;
using DiffEgg.Formats;

namespace DiffEgg.Tests;

public sealed class SyntheticSceneTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-synth-", "d");
    string _tmp => _temp.Path;

    public void Dispose() => _temp.Dispose();

    static Dictionary<string, byte[]> ReadTree(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    [Fact]
    public void SplitMix64MatchesTheReferenceVector()
    {
        ulong s = 0;
        Assert.Equal(0xE220A8397B1DCDAFUL, Xoshiro256.SplitMix64(ref s)); // first output of SplitMix64 seeded with 0
    }

    [Fact]
    public void SameSeedGivesIdenticalBytesDifferentSeedsDiffer()
    {
        var o = new SceneOptions();
        string a = Path.Combine(_tmp, "a"), b = Path.Combine(_tmp, "b"), c = Path.Combine(_tmp, "c");
        SyntheticDatasetWriter.Write(a, o, 7, SyntheticSplit.Test, 0, 4);
        SyntheticDatasetWriter.Write(b, o, 7, SyntheticSplit.Test, 0, 4);
        SyntheticDatasetWriter.Write(c, o, 8, SyntheticSplit.Test, 0, 4);
        var ta = ReadTree(a); var tb = ReadTree(b); var tc = ReadTree(c);
        Assert.Equal(4 * 3 + 3, ta.Count); // images, semantic, panoptic PNGs + 3 JSON files
        Assert.Equal(ta.Keys.OrderBy(k => k), tb.Keys.OrderBy(k => k));
        foreach (var (k, v) in ta) Assert.True(v.AsSpan().SequenceEqual(tb[k]), $"{k} differs between two runs with the same seed");
        for (int i = 0; i < 4; i++)
        {
            string img = Path.Combine("images", $"test_{i:D6}.png");
            Assert.False(ta[img].AsSpan().SequenceEqual(tc[img]), $"{img} is the same for seeds 7 and 8");
        }
    }

    [Fact]
    public void TrainAndTestSplitsAreDisjoint()
    {
        Assert.NotEqual(SceneGenerator.SceneSeed(0, SyntheticSplit.Train, 3), SceneGenerator.SceneSeed(0, SyntheticSplit.Test, 3));
        Assert.Equal(1_000_003, SceneGenerator.SceneNumber(SyntheticSplit.Test, 3));
        Assert.Equal(3, SceneGenerator.SceneNumber(SyntheticSplit.Train, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => SceneGenerator.SceneNumber(SyntheticSplit.Train, 1_000_000));
        var g = new SceneGenerator();
        Assert.False(g.Generate(0, SyntheticSplit.Train, 0).Image.Pixels.AsSpan().SequenceEqual(g.Generate(0, SyntheticSplit.Test, 0).Image.Pixels));
    }

    [Fact]
    public void GroundTruthFilesAgreePixelForPixel()
    {
        const int n = 6;
        var o = new SceneOptions { Antialias = true };
        SyntheticDatasetWriter.Write(_tmp, o, 3, SyntheticSplit.Train, 10, n);
        var inst = CocoFiles.ReadInstances(Path.Combine(_tmp, "instances.json"));
        var pan = PanopticFiles.ReadJson(Path.Combine(_tmp, "panoptic.json"), groundTruth: true);
        Assert.Equal(7, pan.Categories.Count);
        Assert.Equal(4, pan.Categories.Count(c => c.IsThing == 1));
        var catOf = pan.Categories.ToDictionary(c => c.Id);
        var gen = new SceneGenerator(o);
        for (int k = 0; k < n; k++)
        {
            int index = 10 + k;
            var scene = gen.Generate(3, SyntheticSplit.Train, index);
            string stem = SyntheticDataset.FileStem(SyntheticSplit.Train, index);
            long imageId = SyntheticDataset.ImageId(SyntheticSplit.Train, index);
            Assert.Equal(imageId, inst.Images[k].Id);

            // PNGs read back equal the generator's maps.
            var ids = PanopticFiles.ReadPng(Path.Combine(_tmp, "panoptic", stem + ".png"), out int w, out int h);
            Assert.Equal((64, 64), (w, h));
            Assert.Equal(scene.SegmentMap, ids);
            var cls = PanopticFiles.ReadClassIdPng(Path.Combine(_tmp, "semantic", stem + ".png"), out _, out _);
            Assert.Equal(scene.ClassMap, cls);
            Assert.Equal(scene.Image.Pixels, ImageIO.ReadRgb(Path.Combine(_tmp, "images", stem + ".png")).Pixels);

            var pa = pan.Annotations.Single(a => a.ImageId == imageId);
            Assert.Equal(stem + ".png", pa.FileName);
            var segCat = pa.Segments.ToDictionary(s => s.Id, s => s.CategoryId);
            // every pixel: its segment is listed, and the class PNG holds that segment's category; no void pixels
            for (int i = 0; i < ids.Length; i++)
            {
                Assert.True(segCat.ContainsKey(ids[i]), $"{stem}: pixel {i} has unlisted segment {ids[i]}");
                Assert.Equal(segCat[ids[i]], (long)cls[i]);
            }
            // areas and boxes of every panoptic segment match its pixels; stuff = one segment per stuff category
            foreach (var s in pa.Segments)
            {
                var mask = ids.Select(v => v == s.Id).ToArray();
                var rle = Rle.Encode(mask, 64, 64);
                Assert.Equal((double)rle.Area, s.Area);
                Assert.Equal(rle.ToBbox(), s.Bbox);
                Assert.True(rle.Area > 0);
            }
            Assert.Equal(pa.Segments.Count(s => catOf[s.CategoryId].IsThing == 0), pa.Segments.Where(s => catOf[s.CategoryId].IsThing == 0).Select(s => s.CategoryId).Distinct().Count());

            // instances.json: one annotation per thing segment, RLE decodes to exactly that panoptic segment
            var anns = inst.Annotations.Where(a => a.ImageId == imageId).ToList();
            var things = pa.Segments.Where(s => catOf[s.CategoryId].IsThing == 1).ToList();
            Assert.Equal(things.Count, anns.Count);
            Assert.InRange(anns.Count, 2, 6);
            foreach (var a in anns)
            {
                int segId = (int)(a.Id - imageId * 100);
                var seg = things.Single(s => s.Id == segId);
                Assert.Equal(seg.CategoryId, a.CategoryId);
                Assert.Equal(0, a.IsCrowd);
                var dec = a.Segmentation!.ToRle(64, 64).Decode();
                for (int i = 0; i < ids.Length; i++) Assert.Equal(ids[i] == segId, dec[i] == 1);
                Assert.Equal(seg.Area, a.Area);
                Assert.Equal(seg.Bbox, a.Bbox);
                Assert.True(a.Area >= Math.Round(o.MinAreaFraction * 64 * 64), $"instance {a.Id} area {a.Area} below the minimum");
            }
        }
    }

    [Fact]
    public void HardPairsAreFrequentTouchingSimilarInColourAndDifferentInTexture()
    {
        var gen = new SceneGenerator();
        int withHard = 0;
        const int n = 50;
        for (int i = 0; i < n; i++)
        {
            var s = gen.Generate(0, SyntheticSplit.Test, i);
            if (s.HardPairs.Count > 0) withHard++;
            foreach (var p in s.HardPairs)
            {
                var a = s.Instances.Single(x => x.SegmentId == p.SegmentIdA);
                var b = s.Instances.Single(x => x.SegmentId == p.SegmentIdB);
                Assert.NotEqual(a.Texture, b.Texture);
                Assert.Equal((a.Texture, b.Texture), (p.TextureA, p.TextureB));
                double de = ColorLab.DeltaE76(a.BaseColor, b.BaseColor);
                Assert.True(de < 10, $"scene {i}: ΔE {de}");
                Assert.Equal(de, p.DeltaE, 9);
                int contact = 0;
                for (int y = 0; y < 64; y++)
                    for (int x = 0; x < 64; x++)
                    {
                        int v = s.SegmentMap[y * 64 + x];
                        if (v != a.SegmentId) continue;
                        if (x > 0 && s.SegmentMap[y * 64 + x - 1] == b.SegmentId) contact++;
                        if (x < 63 && s.SegmentMap[y * 64 + x + 1] == b.SegmentId) contact++;
                        if (y > 0 && s.SegmentMap[(y - 1) * 64 + x] == b.SegmentId) contact++;
                        if (y < 63 && s.SegmentMap[(y + 1) * 64 + x] == b.SegmentId) contact++;
                    }
                Assert.Equal(p.ContactLength, contact);
                Assert.True(contact >= 3, $"scene {i}: pair {p.SegmentIdA}-{p.SegmentIdB} has {contact} contacts");
            }
        }
        Assert.True(withHard >= 0.4 * n, $"only {withHard}/{n} scenes hold a hard pair");
    }

    [Fact]
    public void HardPairsJsonListsThePairs()
    {
        SyntheticDatasetWriter.Write(_tmp, new SceneOptions(), 0, SyntheticSplit.Test, 0, 5);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_tmp, "hard_pairs.json")));
        var images = doc.RootElement.GetProperty("images").EnumerateArray().ToList();
        Assert.Equal(5, images.Count);
        var gen = new SceneGenerator();
        for (int i = 0; i < 5; i++)
        {
            var s = gen.Generate(0, SyntheticSplit.Test, i);
            var pairs = images[i].GetProperty("pairs").EnumerateArray().ToList();
            Assert.Equal(s.HardPairs.Count, pairs.Count);
            for (int j = 0; j < pairs.Count; j++)
            {
                var seg = pairs[j].GetProperty("segment_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                Assert.Equal(new[] { s.HardPairs[j].SegmentIdA, s.HardPairs[j].SegmentIdB }, seg);
                var ann = pairs[j].GetProperty("annotation_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                Assert.Equal(SyntheticDatasetWriter.AnnotationId(images[i].GetProperty("image_id").GetInt32(), seg[0]), ann[0]);
            }
        }
    }

    [Fact]
    public void ColorLabHasKnownValues()
    {
        var white = ColorLab.ToLab(255, 255, 255);
        Assert.Equal(100, white.L, 3); Assert.Equal(0, white.A, 2); Assert.Equal(0, white.B, 2);
        Assert.Equal(100, ColorLab.DeltaE76(new Rgb(0, 0, 0), new Rgb(255, 255, 255)), 2);
        var lab = ColorLab.ToLab(120, 80, 200);
        var (r, g, b) = ColorLab.FromLab(lab.L, lab.A, lab.B);
        Assert.Equal(120, r, 3); Assert.Equal(80, g, 3); Assert.Equal(200, b, 3);
    }

    [Fact]
    public void OptionsAreValidated()
    {
        Assert.Throws<ArgumentException>(() => new SceneGenerator(new SceneOptions { Size = 8 }));
        Assert.Throws<ArgumentException>(() => new SceneGenerator(new SceneOptions { MinObjects = 1 }));
    }
}
