using DiffEgg.Baseline;
using DiffEgg.Data;
using DiffEgg.Formats;
using DiffEgg.Models;
using DiffEgg.Refinement;
using DiffEgg.Tests.Cli;

namespace DiffEgg.Tests.Baseline;

[Collection("Cli")]
public class BaselineCliTests
{
    /// <summary>3 synthetic 64-px scenes (the embedded model's native size) in a temp folder: d/images, d/instances.json.</summary>
    static TempDir Scenes(int count = 3)
    {
        var dir = new TempDir("diffegg-baseline");
        Assert.Equal(0, CliRun.Capture("synth", "--count", count.ToString(), "--size", "64", "--seed", "6", "--split", "test", "--style", "stress", "--out", Path.Combine(dir, "d")).Code);
        return dir;
    }

    [Fact]
    public void TheEmbeddedModelsFeaturesComeFromTheDecodersAttentionAt32By32()
    {
        using var model = DiffusionModelFolder.Load(EmbeddedModel.DefaultPath);
        var (name, level) = BaselineSegmenter.ChooseLayer(model.Unet);
        Assert.Equal("up_blocks.1.attentions.1.transformer_blocks.0.attn1", name);
        Assert.Equal(1, level);
        using var seg = new BaselineSegmenter(model, new BaselineOptions());
        var (f, c, h, w) = seg.Features(new RgbImage(64, 64));
        Assert.Equal((64, 32, 32), (c, h, w));
        Assert.Equal(32 * 32 * 64, f.Length);
        // a larger processing size gives a finer grid, pooled back to at most 32×32 (the eigen-problem stays at ≤ 1,024 nodes)
        using var big = new BaselineSegmenter(model, new BaselineOptions { Size = 256 });
        var (fb, cb, hb, wb) = big.Features(new RgbImage(256, 192));
        Assert.Equal((64, 24, 32), (cb, hb, wb));   // 256 wide, 192 high: 128×96 at the layer, pooled by 4
        Assert.Equal(32 * 24 * 64, fb.Length);
        var masks = big.Segment(new RgbImage(256, 192), 1);
        Assert.All(masks, m => Assert.Equal((256, 192), (m.Segmentation!.Rle!.Width, m.Segmentation.Rle.Height)));
    }

    [Fact]
    public void BaselineWritesResultsAndTheImageListWithIdsInFileNameOrder()
    {
        using var dir = Scenes();
        string images = Path.Combine(dir, "d", "images"), out1 = Path.Combine(dir, "b.json"), out2 = Path.Combine(dir, "b2.json");
        var r = CliRun.Capture("baseline", "--images", images, "--out", out1);
        Assert.Equal(0, r.Code);
        Assert.Contains("diffcut on the output of up_blocks.1", r.Out);
        var list = CocoMetadataFiles.ReadImageInfo(Path.Combine(dir, "b.images.json"));
        Assert.Equal(new long[] { 1, 2, 3 }, list.Select(i => i.Id));
        Assert.Equal(Directory.GetFiles(images).Select(Path.GetFileName).Order(StringComparer.Ordinal), list.Select(i => i.FileName));
        var res = CocoFiles.ReadResults(out1, new CocoDataset { Images = list });
        Assert.NotEmpty(res);
        Assert.All(res, x => { Assert.Equal(1, x.CategoryId); Assert.InRange(x.Score, 0, 1); Assert.Equal((64, 64), (x.Segmentation!.Rle!.Width, x.Segmentation.Rle.Height)); });
        Assert.Equal(res.Select(x => x.ImageId).Order(), res.Select(x => x.ImageId));
        // deterministic
        Assert.Equal(0, CliRun.Capture("baseline", "--images", images, "--out", out2).Code);
        Assert.Equal(File.ReadAllBytes(out1), File.ReadAllBytes(out2));
        // maskcut: at most --cuts masks per image
        Assert.Equal(0, CliRun.Capture("baseline", "--images", images, "--out", Path.Combine(dir, "m.json"), "--method", "maskcut", "--cuts", "2").Code);
        var mc = CocoFiles.ReadResults(Path.Combine(dir, "m.json"), new CocoDataset { Images = list });
        Assert.All(mc.GroupBy(x => x.ImageId), g => Assert.True(g.Count() <= 2));
    }

    [Fact]
    public void ImageInfoGivesTheIdsAndAMissingEntryIsOneLineNamingTheFile()
    {
        using var dir = Scenes();
        string images = Path.Combine(dir, "d", "images"), info = Path.Combine(dir, "d", "instances.json"), outFile = Path.Combine(dir, "b.json");
        Assert.Equal(0, CliRun.Capture("baseline", "--images", images, "--image-info", info, "--out", outFile).Code);
        Assert.False(File.Exists(Path.Combine(dir, "b.images.json")));   // the ids are the user's: no list written
        var gt = CocoFiles.ReadInstances(info);
        Assert.All(CocoFiles.ReadResults(outFile, gt), x => Assert.NotNull(gt.FindImage(x.ImageId)));
        // an image without an entry: one line naming it, the earlier output untouched
        var before = File.ReadAllBytes(outFile);
        ImageIO.WriteRgbPng(Path.Combine(images, "extra.png"), new RgbImage(64, 64));
        var bad = CliRun.Fails(1, new[] { "baseline", "--images", images, "--image-info", info, "--out", outFile }, new[] { "extra.png" }, new[] { outFile });
        var line = Assert.Single(bad.ErrLines);
        Assert.Contains("no entry in 'images' for extra.png", line);
        Assert.Equal(before, File.ReadAllBytes(outFile));
        CliRun.Fails(2, new[] { "baseline", "--images", images, "--out", outFile, "--method", "ncut" }, new[] { "--method" }, new[] { outFile });
    }

    [Fact]
    public void ShardedBaselineMergesToTheBytesOfOneRunWithItsImageList()
    {
        using var dir = Scenes();
        string images = Path.Combine(dir, "d", "images"), one = Path.Combine(dir, "one.json"), sharded = Path.Combine(dir, "sh.json");
        Assert.Equal(0, CliRun.Capture("baseline", "--images", images, "--out", one).Code);
        for (int i = 0; i < 2; i++) Assert.Equal(0, CliRun.Capture("baseline", "--images", images, "--out", sharded, "--shard-index", i.ToString(), "--shard-count", "2").Code);
        Assert.False(File.Exists(sharded));
        Assert.Equal(0, CliRun.Capture("merge", sharded).Code);
        Assert.Equal(File.ReadAllBytes(one), File.ReadAllBytes(sharded));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "one.images.json")), File.ReadAllBytes(Path.Combine(dir, "sh.images.json")));
    }

    [Fact]
    public void ShardedSegmentMergesToTheSameFolderAsOneRun()
    {
        using var dir = Scenes(3);
        string images = Path.Combine(dir, "d", "images"), one = Path.Combine(dir, "one"), sharded = Path.Combine(dir, "sh");
        Assert.Equal(0, CliRun.Capture("segment", "--images", images, "--out", one).Code);
        for (int i = 0; i < 2; i++) Assert.Equal(0, CliRun.Capture("segment", "--images", images, "--out", sharded, "--shard-index", i.ToString(), "--shard-count", "2").Code);
        Assert.False(File.Exists(Path.Combine(sharded, "results.json")));
        Assert.Equal(0, CliRun.Capture("merge", sharded).Code);
        var a = Directory.GetFiles(one, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(one, f)).Order(StringComparer.Ordinal).ToList();
        var b = Directory.GetFiles(sharded, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(sharded, f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(a, b);
        // every file byte-identical (the edges' JSON names the input image and the model, not the output folder)
        foreach (var f in a) Assert.True(File.ReadAllBytes(Path.Combine(one, f)).SequenceEqual(File.ReadAllBytes(Path.Combine(sharded, f))), f);
        // an unsharded --resume run after losing one image's part redoes only that image and gives the same folder
        string resumed = Path.Combine(dir, "res");
        Assert.Equal(0, CliRun.Capture("segment", "--images", images, "--out", resumed, "--resume").Code);
        File.Delete(Directory.GetFiles(resumed + ".parts", "*.refined.json").Order().First());
        var again = CliRun.Capture("segment", "--images", images, "--out", resumed, "--resume");
        Assert.Equal(0, again.Code);
        Assert.Contains("1 done, 2 skipped", again.Out);
        foreach (var f in a) Assert.True(File.ReadAllBytes(Path.Combine(one, f)).SequenceEqual(File.ReadAllBytes(Path.Combine(resumed, f))), f);
    }

    [Fact]
    public void SegmentRunsEndToEndOnPlainImagesAndOnAnotherToolsMasks()
    {
        using var dir = Scenes(2);
        string images = Path.Combine(dir, "d", "images"), outDir = Path.Combine(dir, "seg");
        var r = CliRun.Capture("segment", "--images", images, "--out", outDir);
        Assert.Equal(0, r.Code);
        Assert.Contains("one-step", r.Out);   // the embedded model's shipped adapter is used by default
        foreach (var f in new[] { "results.json", "baseline.json", "images.json", "index.html" }) Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        var list = CocoMetadataFiles.ReadImageInfo(Path.Combine(outDir, "images.json"));
        Assert.Equal(2, list.Count);
        var ds = new CocoDataset { Images = list };
        var refined = CocoFiles.ReadResults(Path.Combine(outDir, "results.json"), ds);
        var coarse = CocoFiles.ReadResults(Path.Combine(outDir, "baseline.json"), ds);
        Assert.NotEmpty(refined);
        // the coarse masks are exactly what `baseline` writes with the same settings
        Assert.Equal(0, CliRun.Capture("baseline", "--images", images, "--out", Path.Combine(dir, "b.json")).Code);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "b.json")), File.ReadAllBytes(Path.Combine(outDir, "baseline.json")));
        foreach (var im in list)
        {
            string stem = Path.GetFileNameWithoutExtension(im.FileName);
            foreach (var k in new[] { "image", "before", "after" }) Assert.True(File.Exists(Path.Combine(outDir, "overlays", $"{stem}.{k}.png")));
            foreach (var k in new[] { ".ternary.png", ".edges.safetensors", ".json" }) Assert.True(File.Exists(Path.Combine(outDir, "edges", stem + k)));
        }
        string html = File.ReadAllText(Path.Combine(outDir, "index.html"));
        Assert.Contains("overlays/" + Path.GetFileNameWithoutExtension(list[0].FileName) + ".after.png", html);

        // another tool's masks instead of the baseline: they are the coarse masks, training-free edges on request
        string other = Path.Combine(dir, "seg2");
        var r2 = CliRun.Capture("segment", "--images", images, "--out", other, "--baseline", Path.Combine(outDir, "baseline.json"), "--no-adapter");
        Assert.Equal(0, r2.Code);
        Assert.Contains("PeakKL + EdgeKL", r2.Out);
        Assert.Equal(File.ReadAllBytes(Path.Combine(outDir, "baseline.json")), File.ReadAllBytes(Path.Combine(other, "baseline.json")));
        var missing = CliRun.Fails(1, new[] { "segment", "--images", images, "--out", other, "--baseline", Path.Combine(dir, "nope.json") },
            new[] { "--baseline", Path.Combine(dir, "nope.json") }, new[] { Path.Combine(other, "baseline.json") });
        Assert.Contains("--baseline", Assert.Single(missing.ErrLines));
    }
}
