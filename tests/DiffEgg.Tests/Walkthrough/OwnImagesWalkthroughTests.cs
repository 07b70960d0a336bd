using System.Text.Json;
using DiffEgg.Data;
using DiffEgg.Evaluation;
using DiffEgg.Formats;
using DiffEgg.Refinement;
using DiffEgg.Tests.Cli;
using Xunit.Abstractions;

namespace DiffEgg.Tests.Walkthrough;

/// <summary>
/// The walk-through of docs/own-images.md on two generated coin photos (<see cref="CoinPhotos"/>, 128×96): a folder of photos and masks
/// from "another tool" (COCO results + image info) → <c>edges --size 64</c> (embedded model) → <c>refine</c> (defaults) →
/// <c>eval instances</c> and <c>overlay</c>, all in-process through the CLI.
/// </summary>
/// <remarks>
/// What is asserted is what holds today (measured when the test was written, docs/own-images.md): refinement with the defaults loses no
/// object (AP50 and AR100 not lower) on either input. Mask AP over IoU 0.50:0.95 is NOT asserted: with the defaults nothing is split and no
/// pixel changes here, but the edge-agreement re-scoring (<c>--rescore</c>) gives a correct single coin a lower score than the unrefined
/// merged masks, and AP of the merged input drops (0.375 → 0.325). With <c>--uncertain 0</c> merged pairs are split (asserted below).
/// </remarks>
[Collection("Cli")]
public class OwnImagesWalkthroughTests
{
    const int W = 128, H = 96;
    readonly ITestOutputHelper _out;
    public OwnImagesWalkthroughTests(ITestOutputHelper output) => _out = output;

    /// <summary>
    /// Writes the two photos (<c>photos/a.png</c>, <c>photos/b.png</c>), <c>image-info.json</c>, the ground truth <c>gt.json</c> and two coarse
    /// inputs as another tool would give them: <c>merged.json</c> (the ground truth with every touching pair merged into one mask) and
    /// <c>threshold.json</c> (8-connected components of a plain brightness threshold); every score 1.
    /// </summary>
    internal static IReadOnlyList<CoinPhotos.Photo> WriteDataset(string dir)
    {
        var photos = CoinPhotos.Two();
        Directory.CreateDirectory(Path.Combine(dir, "photos"));
        var info = new CocoDataset();
        var gt = new CocoDataset { Categories = { new CocoCategory(1, "coin") } };
        var merged = new List<CocoResult>();
        var threshold = new List<CocoResult>();
        long annId = 1;
        for (int p = 0; p < photos.Count; p++)
        {
            var ph = photos[p];
            long imageId = p + 1;
            ImageIO.WriteRgbPng(Path.Combine(dir, "photos", ph.Name + ".png"), ph.Image);
            var image = new CocoImage(imageId, W, H, ph.Name + ".png");
            info.Images.Add(image);
            gt.Images.Add(image);
            foreach (var m in ph.Masks)
            {
                var rle = Rle.Encode(m, H, W);
                gt.Annotations.Add(new CocoAnnotation { Id = annId++, ImageId = imageId, CategoryId = 1, Segmentation = CocoSegmentation.FromRle(rle), Area = rle.Area, Bbox = rle.ToBbox() });
            }
            var inPair = ph.TouchingPairs.SelectMany(t => new[] { t.A, t.B }).ToHashSet();
            for (int k = 0; k < ph.Masks.Count; k++) if (!inPair.Contains(k)) merged.Add(Result(imageId, ph.Masks[k]));
            foreach (var (a, b) in ph.TouchingPairs) merged.Add(Result(imageId, ph.Masks[a].Zip(ph.Masks[b], (x, y) => (byte)(x | y)).ToArray()));
            // a plain threshold between the cloth and the coins' darker side, as a simple tool would use
            var fg = new bool[W * H];
            for (int i = 0; i < fg.Length; i++) fg[i] = (ph.Image.Pixels[3 * i] + ph.Image.Pixels[3 * i + 1] + ph.Image.Pixels[3 * i + 2]) / 3.0 > 95;
            var cc = ConnectedComponents.Label(fg, W, H, 8, 20);
            for (int c = 1; c <= cc.Count; c++) threshold.Add(Result(imageId, cc.Labels.Select(l => l == c ? (byte)1 : (byte)0).ToArray()));
        }
        CocoFiles.WriteInstances(Path.Combine(dir, "image-info.json"), info);
        CocoFiles.WriteInstances(Path.Combine(dir, "gt.json"), gt);
        CocoFiles.WriteResults(Path.Combine(dir, "merged.json"), merged);
        CocoFiles.WriteResults(Path.Combine(dir, "threshold.json"), threshold);
        return photos;
    }

    static CocoResult Result(long imageId, byte[] m)
    {
        var rle = Rle.Encode(m, H, W);
        return new CocoResult { ImageId = imageId, CategoryId = 1, Score = 1.0, Segmentation = CocoSegmentation.FromRle(rle), Bbox = rle.ToBbox() };
    }

    [Fact]
    public void GeneratedPhotos_HaveTouchingCoinsAndAnImperfectThreshold()
    {
        var photos = CoinPhotos.Two();
        Assert.Equal(2, photos.Count);
        foreach (var ph in photos)
        {
            Assert.Equal((W, H), (ph.Image.Width, ph.Image.Height));
            // the masks do not overlap, and every touching pair shares a boundary (8-neighbours)
            var owner = new int[W * H];
            for (int k = 0; k < ph.Masks.Count; k++)
                for (int i = 0; i < W * H; i++)
                    if (ph.Masks[k][i] != 0) { Assert.Equal(0, owner[i]); owner[i] = k + 1; }
            foreach (var (a, b) in ph.TouchingPairs)
                Assert.Contains(Enumerable.Range(0, W * H), i => owner[i] == a + 1 && i % W + 1 < W && (owner[i + 1] == b + 1 || (i + W + 1 < W * H && owner[i + W + 1] == b + 1)));
            // texture and noise: the pixels of a coin and of the cloth are far from constant
            var coin = ph.Masks[0];
            var values = Enumerable.Range(0, W * H).Where(i => coin[i] != 0).Select(i => (double)ph.Image.Pixels[3 * i + 1]).ToList();
            double mean = values.Average(), sd = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
            Assert.True(sd > 10, $"coin grey-level σ {sd:F1}");
        }
    }

    [Fact]
    public void Walkthrough_EdgesRefineEvalOverlay_OnGeneratedCoinPhotos()
    {
        using var tmp = new TempDir();
        string dir = tmp.Path;
        var photos = WriteDataset(dir);
        string P(string name) => Path.Combine(dir, name);

        // 1. edges with the embedded model, at a size other than the photos' own
        var r = CliRun.Capture("edges", "--input", P("photos"), "--out", P("edges"), "--size", "64");
        Assert.True(r.Code == 0, r.Err);
        foreach (var ph in photos)
        {
            Assert.Contains($"{ph.Name}.png: 128×96 → processed at 64×48", r.Out);
            foreach (var ext in new[] { ".ternary.png", ".edges.safetensors", ".json" }) Assert.True(File.Exists(P($"edges/{ph.Name}{ext}")), ph.Name + ext);
        }

        var gt = CocoFiles.ReadInstances(P("gt.json"));
        foreach (var input in new[] { "merged", "threshold" })
        {
            // 2. refine with its defaults
            r = CliRun.Capture("refine", "--images", P("photos"), "--image-info", P("image-info.json"), "--edges", P("edges"),
                "--masks", P(input + ".json"), "--out", P(input + ".refined.json"));
            Assert.True(r.Code == 0, r.Err);
            // valid COCO results for the ground truth's images: masks of the image size, with boxes and finite scores
            var before = CocoFiles.ReadResults(P(input + ".json"), gt);
            var after = CocoFiles.ReadResults(P(input + ".refined.json"), gt);
            Assert.NotEmpty(after);
            Assert.All(after, x =>
            {
                Assert.NotNull(x.Segmentation?.Rle);
                Assert.Equal((H, W), (x.Segmentation!.Rle!.Height, x.Segmentation.Rle.Width));
                Assert.NotNull(x.Bbox);
                Assert.True(double.IsFinite(x.Score) && x.Score > 0);
            });

            // 3. eval instances, as a user with ground truth runs it; its --json agrees with the evaluator
            foreach (var (name, file) in new[] { ("before", input + ".json"), ("after", input + ".refined.json") })
            {
                r = CliRun.Capture("eval", "instances", "--gt", P("gt.json"), "--dt", P(file), "--json", P($"{input}.{name}.eval.json"));
                Assert.True(r.Code == 0, r.Err);
                Assert.Contains("Average Precision", r.Out);
            }
            var eb = CocoEvaluator.Evaluate(gt, before, CocoIouType.Segm);
            var ea = CocoEvaluator.Evaluate(gt, after, CocoIouType.Segm);
            using (var d = JsonDocument.Parse(File.ReadAllText(P($"{input}.after.eval.json"))))
                for (int k = 0; k < CocoEvalResult.StatNames.Length; k++)
                    Assert.Equal(ea.Stats[k], d.RootElement.GetProperty(CocoEvalResult.StatNames[k]).GetDouble(), 9);
            _out.WriteLine($"{input}: {before.Count} masks → {after.Count}; AP {eb.Stats[0]:F3} → {ea.Stats[0]:F3}, AP50 {eb.Stats[1]:F3} → {ea.Stats[1]:F3}, AR100 {eb.Stats[8]:F3} → {ea.Stats[8]:F3}");
            // refinement loses no object (see the remarks for AP)
            Assert.True(ea.Stats[1] >= eb.Stats[1] - 1e-9, $"{input}: AP50 {eb.Stats[1]:F3} → {ea.Stats[1]:F3}");
            Assert.True(ea.Stats[8] >= eb.Stats[8] - 1e-9, $"{input}: AR100 {eb.Stats[8]:F3} → {ea.Stats[8]:F3}");

            // 4. overlay, as a user without ground truth looks at the result
            r = CliRun.Capture("overlay", "--images", P("photos"), "--masks", P(input + ".refined.json"), "--image-info", P("image-info.json"), "--out", P(input + "-overlays"));
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains($"overlay: 2 of 2 image(s) written to {P(input + "-overlays")} ({after.Count} masks drawn)", r.Out);
            foreach (var ph in photos)
            {
                var png = ImageIO.ReadRgb(P($"{input}-overlays/{ph.Name}.overlay.png"));
                Assert.Equal((W, H), (png.Width, png.Height));
            }
        }

        // uncertain pixels as non-edges: the coin rims separate the coins, and at least one merged pair is split
        r = CliRun.Capture("refine", "--images", P("photos"), "--image-info", P("image-info.json"), "--edges", P("edges"),
            "--masks", P("merged.json"), "--out", P("merged.u0.json"), "--uncertain", "0");
        Assert.True(r.Code == 0, r.Err);
        var u0 = CocoFiles.ReadResults(P("merged.u0.json"), gt);
        int split = 0;
        for (int p = 0; p < photos.Count; p++)
        {
            var masks = u0.Where(x => x.ImageId == p + 1).Select(x => x.Segmentation!.ToRle(H, W)).ToList();
            foreach (var (a, b) in photos[p].TouchingPairs)
            {
                var (ia, ja) = Rle.BestMatch(masks, Rle.Encode(photos[p].Masks[a], H, W));
                var (ib, jb) = Rle.BestMatch(masks, Rle.Encode(photos[p].Masks[b], H, W));
                _out.WriteLine($"--uncertain 0: {photos[p].Name} pair {a}+{b}: best IoU {ia:F3} (mask {ja}) / {ib:F3} (mask {jb})");
                if (ia >= 0.5 && ib >= 0.5 && ja != jb) split++;
            }
        }
        Assert.True(split >= 1, "no merged pair split with --uncertain 0");
    }
}
