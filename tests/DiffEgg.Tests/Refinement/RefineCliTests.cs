using System.Text;
using DiffEgg.Cli;
using DiffEgg.Data;
using DiffEgg.Formats;
using DiffEgg.Refinement;
using DiffEgg.Tests.Cli;
using static DiffEgg.Tests.Refinement.Scenes;

namespace DiffEgg.Tests.Refinement;

[Collection("Cli")]
public class RefineCliTests
{
    const int W = 64, H = 64;

    /// <summary>Two images: "a" (a mask merged over two touching squares, ternary PNG edges), "b" (one square in two fragments, safetensors edges at half size).</summary>
    static TempDir MakeRefineDataset(out byte[] sqA, out byte[] sqB, out byte[] sqC)
    {
        var dir = new TempDir("diffegg-refine-cli");
        Directory.CreateDirectory(Path.Combine(dir, "images"));
        Directory.CreateDirectory(Path.Combine(dir, "edges"));
        foreach (var n in new[] { "a", "b" }) ImageIO.WriteRgbPng(Path.Combine(dir, "images", n + ".png"), new RgbImage(W, H));
        sqA = Rect(W, H, 12, 51, 6, 30);
        sqB = Rect(W, H, 12, 51, 33, 57);
        var ea = new byte[W * H];
        void Put(float[] f) { for (int i = 0; i < f.Length; i++) if (f[i] > 0) ea[i] = 255; }
        var ef = new float[W * H];
        Ring(ef, W, 11, 52, 5, 58);
        VLine(ef, W, 31, 11, 52); VLine(ef, W, 32, 11, 52);
        Put(ef);
        // an uncertain band (128) far from the objects, to exercise the ternary convention
        for (int x = 0; x < W; x++) ea[60 * W + x] = 128;
        ImageIO.WriteGrayPng(Path.Combine(dir, "edges", "a.ternary.png"), ea, W, H);
        // image b: 32×32 safetensors edge map (resized to 64×64): ring around rows/cols 8..55 at full size
        sqC = Rect(W, H, 8, 55, 8, 55);
        var eb = new float[32 * 32];
        Ring(eb, 32, 3, 28, 3, 28);
        ComponentsAndEdgeReaderTests.WriteSafetensors(Path.Combine(dir, "edges", "b.edges.safetensors"), "edges", eb, 32, 32);
        File.WriteAllText(Path.Combine(dir, "info.json"),
            "{\"images\":[{\"id\":1,\"file_name\":\"a.png\",\"height\":64,\"width\":64},{\"id\":2,\"file_name\":\"b.png\",\"height\":64,\"width\":64}]}");
        var merged = Or(Or(sqA, sqB), Rect(W, H, 12, 51, 31, 32));
        var results = new List<CocoResult>
        {
            Res(1, 1, 0.9, merged),
            Res(2, 1, 0.8, Rect(W, H, 10, 53, 10, 30)),
            Res(2, 1, 0.6, Rect(W, H, 10, 53, 31, 53)),
        };
        CocoFiles.WriteResults(Path.Combine(dir, "masks.json"), results);
        return dir;
    }

    static CocoResult Res(long img, long cat, double score, byte[] px) =>
        new() { ImageId = img, CategoryId = cat, Score = score, Segmentation = CocoSegmentation.FromRle(Rle.Encode(px, H, W)) };

    static string[] RefineArgs(string dir, string outName = "refined.json") => new[]
    {
        "refine", "--images", Path.Combine(dir, "images"), "--image-info", Path.Combine(dir, "info.json"),
        "--edges", Path.Combine(dir, "edges"), "--masks", Path.Combine(dir, "masks.json"), "--out", Path.Combine(dir, outName),
    };

    static CocoDataset Info(string dir) => new() { Images = CocoMetadataFiles.ReadImageInfo(Path.Combine(dir, "info.json")) };

    [Fact]
    public void RefineSplitsMergesAndWritesCocoResults()
    {
        using var dir = MakeRefineDataset(out var a, out var b, out var c);
        // scores exactly as given (no re-scoring by edge agreement) to check which mask carries which
        Assert.Equal(0, DiffEggApp.Run(RefineArgs(dir).Concat(new[] { "--rescore", "0" }).ToArray()));
        var res = CocoFiles.ReadResults(Path.Combine(dir, "refined.json"), Info(dir));
        var img1 = res.Where(r => r.ImageId == 1).OrderByDescending(r => r.Score).ToList();
        Assert.Equal(3, img1.Count); // two squares at 0.9 + the original at 0.45
        Assert.True(img1.Take(2).Max(r => IoU(r.Segmentation!.Rle!.Decode(), a)) > 0.9);
        Assert.True(img1.Take(2).Max(r => IoU(r.Segmentation!.Rle!.Decode(), b)) > 0.9);
        Assert.Equal(0.45, img1[2].Score, 6);
        var img2 = Assert.Single(res, r => r.ImageId == 2);
        Assert.Equal(0.8, img2.Score, 6);
        Assert.True(IoU(img2.Segmentation!.Rle!.Decode(), c) > 0.85, $"IoU {IoU(img2.Segmentation!.Rle!.Decode(), c)}");
        Assert.NotNull(img2.Bbox);
    }

    [Fact]
    public void EdgeScalePicksTheEdgeFile()
    {
        // image a gets a second, edge-free float map beside its ternary PNG: ternary (default) reads the PNG and splits the
        // merged mask; soft and minmax read the float map first, find no edge and keep the mask as it is
        using var dir = MakeRefineDataset(out _, out _, out _);
        ComponentsAndEdgeReaderTests.WriteSafetensors(Path.Combine(dir, "edges", "a.edges.safetensors"), "edges", new float[W * H], W, H);
        Assert.Equal(0, DiffEggApp.Run(RefineArgs(dir, "ternary.json")));
        Assert.Equal(3, CocoFiles.ReadResults(Path.Combine(dir, "ternary.json"), Info(dir)).Count(r => r.ImageId == 1));
        foreach (var scale in new[] { "soft", "minmax" })
        {
            Assert.Equal(0, DiffEggApp.Run(RefineArgs(dir, scale + ".json").Concat(new[] { "--edge-scale", scale }).ToArray()));
            var img1 = Assert.Single(CocoFiles.ReadResults(Path.Combine(dir, scale + ".json"), Info(dir)), r => r.ImageId == 1);
            Assert.Equal(0.9, img1.Score, 6);
        }
        CliRun.Fails(2, RefineArgs(dir, "x.json").Concat(new[] { "--edge-scale", "bogus" }).ToArray(), new[] { "--edge-scale", "bogus" }, new[] { Path.Combine(dir, "x.json") });
        Assert.False(File.Exists(Path.Combine(dir, "x.json")));
    }

    [Fact]
    public void RefinementRaisesMaskApOnTheTinyDataset()
    {
        using var dir = MakeRefineDataset(out var a, out var b, out var c);
        Assert.Equal(0, DiffEggApp.Run(RefineArgs(dir)));
        var gt = Info(dir);
        gt.Categories.Add(new CocoCategory(1, "box"));
        int id = 1;
        foreach (var (img, m) in new[] { (1L, a), (1L, b), (2L, c) })
        {
            var rle = Rle.Encode(m, H, W);
            gt.Annotations.Add(new CocoAnnotation { Id = id++, ImageId = img, CategoryId = 1, Segmentation = CocoSegmentation.FromRle(rle), Area = rle.Area, Bbox = rle.ToBbox() });
        }
        var before = DiffEgg.Evaluation.CocoEvaluator.Evaluate(gt, CocoFiles.ReadResults(Path.Combine(dir, "masks.json"), gt), DiffEgg.Evaluation.CocoIouType.Segm);
        var after = DiffEgg.Evaluation.CocoEvaluator.Evaluate(gt, CocoFiles.ReadResults(Path.Combine(dir, "refined.json"), gt), DiffEgg.Evaluation.CocoIouType.Segm);
        // before: no mask reaches IoU 0.5 with any box; after: all three boxes are found at IoU ≥ 0.75
        Assert.Equal(0.0, before.Stats[1], 6);
        Assert.True(after.Stats[2] > 0.99, $"AP75 after refinement {after.Stats[2]}");
    }

    [Fact]
    public void CorruptImageFailsOnlyThatImageAndExitsNonZero()
    {
        using var dir = MakeRefineDataset(out var a, out _, out _);
        File.WriteAllBytes(Path.Combine(dir, "images", "b.png"), Encoding.ASCII.GetBytes("not a png"));
        CliRun.Fails(1, RefineArgs(dir), new[] { Path.Combine(dir, "images", "b.png"), Path.Combine(dir, "refined.json") }, errors: 2);
        var res = CocoFiles.ReadResults(Path.Combine(dir, "refined.json"), Info(dir));
        Assert.All(res, r => Assert.Equal(1, r.ImageId));
        Assert.Equal(3, res.Count);
    }

    [Fact]
    public void BadInputsGiveErrorsAndKeepExistingOutput()
    {
        using var dir = MakeRefineDataset(out _, out _, out _);
        string outPath = Path.Combine(dir, "refined.json");
        File.WriteAllText(outPath, "previous");
        // malformed results JSON
        File.WriteAllText(Path.Combine(dir, "masks.json"), "[{\"image_id\": 1, ");
        CliRun.Fails(1, RefineArgs(dir), new[] { Path.Combine(dir, "masks.json") }, new[] { outPath });
        Assert.Equal("previous", File.ReadAllText(outPath));
        // masks for an image id that is not in --image-info
        CocoFiles.WriteResults(Path.Combine(dir, "masks.json"), new[] { Res(7, 1, 0.5, Rect(W, H, 0, 3, 0, 3)) });
        CliRun.Fails(1, RefineArgs(dir), new[] { Path.Combine(dir, "masks.json"), "image id 7" }, new[] { outPath });
        Assert.Equal("previous", File.ReadAllText(outPath));
        // masks for an image that is in --image-info but not in the folder: that image fails
        File.Delete(Path.Combine(dir, "images", "a.png"));
        CocoFiles.WriteResults(Path.Combine(dir, "masks.json"), new[] { Res(1, 1, 0.5, Rect(W, H, 0, 3, 0, 3)) });
        CliRun.Fails(1, RefineArgs(dir), new[] { Path.Combine(dir, "images", "a.png"), outPath }, new[] { outPath }, errors: 2);
        // bad option
        // the library names its option (Radius); the CLI reports it under the flag as typed
        var r = CliRun.Fails(2, RefineArgs(dir).Append("--radius").Append("0").ToArray(), new[] { "--radius", "0" });
        Assert.Contains("error: --radius: must be in 1..32, got 0", r.Err);
    }

    [Fact]
    public void PanopticWritesPseudoLabelsThatRoundTripThroughTheReaders()
    {
        int w = PanopticBuilderTests.W, h = PanopticBuilderTests.H;
        var (dir, sem, e) = WritePanopticInputs("diffegg-panoptic-cli");
        using var dirScope = dir;
        string[] args =
        {
            "panoptic", "--images", Path.Combine(dir, "images"), "--edges", Path.Combine(dir, "edges"),
            "--semantic", Path.Combine(dir, "semantic"), "--categories", Path.Combine(dir, "cats.json"), "--out", Path.Combine(dir, "out"),
        };
        Assert.Equal(0, DiffEggApp.Run(args));
        var ds = PanopticFiles.ReadJson(Path.Combine(dir, "out", "panoptic.json"), groundTruth: true);
        Assert.Equal(2, ds.Annotations.Count);
        Assert.Equal(4, ds.Categories.Count);
        Assert.Equal(0, ds.Categories.Single(c => c.Id == 50).IsThing);
        var expected = PanopticBuilder.Build(sem, w, h, new EdgeMap(w, h, e.Select(v => (byte)(v * 255) / 255f).ToArray()), PanopticBuilderTests.Cats);
        foreach (var ann in ds.Annotations)
        {
            var ids = PanopticFiles.ReadPng(Path.Combine(dir, "out", "panoptic", ann.FileName), out int pw, out int ph);
            Assert.Equal((w, h), (pw, ph));
            Assert.Equal(expected.SegmentIds, ids);
            Assert.Equal(expected.Segments.Select(x => ((long)x.Id, (long)x.CategoryId, (double)x.Area)),
                ann.Segments.Select(x => (x.Id, x.CategoryId, x.Area!.Value)));
            Assert.Equal(2, ann.Segments.Count(x => x.CategoryId == 1));
        }

        // scored against hand-made ground truth (the two objects, edge column 38 void) the pseudo-labels are perfect: PQ = 1
        var gtIds = new int[w * h];
        var gtSegs = new List<PanopticSegment>();
        void Seg(int id, int cat, Func<int, int, bool> inside)
        {
            long area = 0;
            for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) if (inside(y, x)) { gtIds[y * w + x] = id; area++; }
            gtSegs.Add(new PanopticSegment { Id = id, CategoryId = cat, Area = area, IsCrowd = 0 });
        }
        Seg(1, 1, (y, x) => y >= 8 && y <= 39 && x >= 4 && x <= 37);
        Seg(2, 1, (y, x) => y >= 8 && y <= 39 && x >= 39 && x <= 73);
        Seg(3, 2, (y, x) => sem[y * w + x] == 2);
        Seg(4, 50, (y, x) => sem[y * w + x] == 50);
        Seg(5, 51, (y, x) => sem[y * w + x] == 51);
        string gtDir = Path.Combine(dir, "gt");
        Directory.CreateDirectory(gtDir);
        var gtDs = new PanopticDataset { Images = ds.Images, Categories = ds.Categories };
        foreach (var ann in ds.Annotations)
        {
            PanopticFiles.WritePng(Path.Combine(gtDir, ann.FileName), gtIds, w, h);
            gtDs.Annotations.Add(new PanopticAnnotation { ImageId = ann.ImageId, FileName = ann.FileName, Segments = gtSegs });
        }
        var pq = DiffEgg.Evaluation.PanopticEvaluator.Evaluate(gtDs, gtDir, ds, Path.Combine(dir, "out", "panoptic"));
        Assert.Equal(1.0, pq.All.Pq, 9);
        Assert.Equal(2, pq.Things.N);
        Assert.Equal(2, pq.Stuff.N);

        // a corrupt semantic PNG: that image fails, the other is still written, exit ≠ 0
        File.WriteAllBytes(Path.Combine(dir, "semantic", "q.png"), new byte[] { 0x89, 0x50, 0x4E, 0x47, 1, 2, 3 });
        Directory.Delete(Path.Combine(dir, "out"), true);
        CliRun.Fails(1, args, new[] { Path.Combine(dir, "semantic", "q.png"), Path.Combine(dir, "out", "panoptic.json") }, errors: 2);
        var ds2 = PanopticFiles.ReadJson(Path.Combine(dir, "out", "panoptic.json"), groundTruth: true);
        Assert.Equal("p.png", Assert.Single(ds2.Annotations).FileName);
        Assert.True(File.Exists(Path.Combine(dir, "out", "panoptic", "p.png")));
    }
    [Fact]
    public void EveryImageFailing_LeavesTheExistingOutputUntouched()
    {
        using var dir = MakeRefineDataset(out _, out _, out _);
        string outPath = Path.Combine(dir, "refined.json");
        File.WriteAllText(outPath, "previous");
        foreach (var f in Directory.GetFiles(Path.Combine(dir, "edges"))) File.Delete(f); // no image has an edge map
        var r = CliRun.Fails(1, RefineArgs(dir), new[] { outPath }, new[] { outPath }, errors: 3);
        Assert.Equal("previous", File.ReadAllText(outPath));
        Assert.Contains($"error: {outPath}: not written: all 2 image(s) failed; the existing file is left as it was", r.ErrLines);
        // one line per failed image, on stderr, naming the image (and its id) once
        Assert.Equal(2, r.ErrLines.Count(l => l.StartsWith($"error: {Path.Combine(dir, "edges")}: no edge map for ", StringComparison.Ordinal)));
        Assert.Contains(r.ErrLines, l => l.EndsWith($"({Path.Combine(dir, "images", "a.png")}, image id 1)", StringComparison.Ordinal));
        Assert.Contains(r.ErrLines, l => l.EndsWith($"({Path.Combine(dir, "images", "b.png")}, image id 2)", StringComparison.Ordinal));
        Assert.DoesNotContain("refined", r.Out);
        Assert.Empty(Directory.GetFiles(dir, ".*tmp"));
    }

    [Fact]
    public void UnknownImageId_IsNamedAgainstImageInfo_NotAGroundTruth()
    {
        using var dir = MakeRefineDataset(out _, out _, out _);
        CocoFiles.WriteResults(Path.Combine(dir, "masks.json"), new[] { Res(7, 1, 0.5, Rect(W, H, 0, 3, 0, 3)) });
        var r = CliRun.Fails(1, RefineArgs(dir), new[] { Path.Combine(dir, "masks.json"), "image_id" });
        string line = Assert.Single(r.ErrLines);
        Assert.Equal($"error: {Path.Combine(dir, "masks.json")}: result [0]: field 'image_id': image id 7 is not in the 'images' of --image-info {Path.Combine(dir, "info.json")}", line);
        Assert.DoesNotContain("ground truth", line);
    }

    [Fact]
    public void UnwritableOutput_IsReportedBeforeAnyWork_NamingTheOutput()
    {
        using var dir = MakeRefineDataset(out _, out _, out _);
        File.WriteAllText(Path.Combine(dir, "masks.json"), "not even JSON"); // would fail later: the output is checked first
        var args = RefineArgs(dir);
        args[^1] = "/proc/nope";
        var r = CliRun.Fails(1, args, new[] { "/proc/nope", "--out" });
        Assert.StartsWith("error: /proc/nope: --out: cannot write there", Assert.Single(r.ErrLines));
    }

    [Fact]
    public void Panoptic_ReplacesJsonAndPngsTogether_AndKeepsThemWhenEveryImageFails()
    {
        var (dir, _, _) = WritePanopticInputs("diffegg-panoptic-unit");
        using var dirScope = dir;
        string outDir = Path.Combine(dir, "out"), pngDir = Path.Combine(outDir, "panoptic"), json = Path.Combine(outDir, "panoptic.json");
        string[] args =
        {
            "panoptic", "--images", Path.Combine(dir, "images"), "--edges", Path.Combine(dir, "edges"),
            "--semantic", Path.Combine(dir, "semantic"), "--categories", Path.Combine(dir, "cats.json"), "--out", outDir,
        };
        Assert.Equal(0, CliRun.Capture(args).Code);
        Assert.Equal(new[] { "p.png", "q.png" }, Directory.GetFiles(pngDir).Select(Path.GetFileName).Order());

        // a second run without q: no stale q.png is left beside the new panoptic.json
        File.Delete(Path.Combine(dir, "images", "q.png"));
        Assert.Equal(0, CliRun.Capture(args).Code);
        Assert.Equal(new[] { "p.png" }, Directory.GetFiles(pngDir).Select(Path.GetFileName));
        Assert.Equal("p.png", Assert.Single(PanopticFiles.ReadJson(json, groundTruth: true).Annotations).FileName);

        // every image failing: panoptic.json and panoptic/ stay as they were, exit 1, and no staging folder is left
        string before = File.ReadAllText(json);
        File.WriteAllBytes(Path.Combine(dir, "semantic", "p.png"), new byte[] { 1, 2, 3 });
        var r = CliRun.Fails(1, args, new[] { outDir }, new[] { json, Path.Combine(pngDir, "p.png") }, errors: 2);
        Assert.Equal(before, File.ReadAllText(json));
        Assert.Equal(new[] { "p.png" }, Directory.GetFiles(pngDir).Select(Path.GetFileName));
        Assert.Contains(r.ErrLines, l => l.StartsWith($"error: {outDir}: not written: all 1 image(s) failed", StringComparison.Ordinal));
        Assert.Contains(r.ErrLines, l => l.StartsWith($"error: {Path.Combine(dir, "semantic", "p.png")}: ", StringComparison.Ordinal));
        Assert.Equal(new[] { "panoptic", "panoptic.json" }, Directory.EnumerateFileSystemEntries(outDir).Select(Path.GetFileName).Order());
    }

    /// <summary>A temp folder with the inputs of `diffegg panoptic` for two images p and q (<see cref="PanopticBuilderTests.Scene"/>): images/, semantic/, edges/ (grey PNGs) and cats.json.</summary>
    static (TempDir Dir, byte[] Semantic, float[] Edges) WritePanopticInputs(string prefix)
    {
        int w = PanopticBuilderTests.W, h = PanopticBuilderTests.H;
        var dir = new TempDir(prefix);
        foreach (var d in new[] { "images", "edges", "semantic" }) Directory.CreateDirectory(Path.Combine(dir, d));
        var (sem, e) = PanopticBuilderTests.Scene();
        foreach (var n in new[] { "p", "q" })
        {
            ImageIO.WriteRgbPng(Path.Combine(dir, "images", n + ".png"), new RgbImage(w, h));
            ImageIO.WriteGrayPng(Path.Combine(dir, "semantic", n + ".png"), sem, w, h);
            ImageIO.WriteGrayPng(Path.Combine(dir, "edges", n + ".png"), e.Select(v => (byte)(v * 255)).ToArray(), w, h);
        }
        File.WriteAllText(Path.Combine(dir, "cats.json"),
            "[{\"id\":1,\"name\":\"a\",\"isthing\":1},{\"id\":2,\"name\":\"b\",\"isthing\":1},{\"id\":50,\"name\":\"s\",\"isthing\":0},{\"id\":51,\"name\":\"t\",\"isthing\":0}]");
        return (dir, sem, e);
    }
}
