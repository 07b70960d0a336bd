using System.Text.Json;
using DiffEgg.Cli;
using DiffEgg.Tests.Cli;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.Models;
using DiffEgg.Formats.SafeTensors;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

[Collection("Cli")]
public class EdgesCommandTests
{
    readonly ITestOutputHelper _out;
    public EdgesCommandTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    /// <summary>A dark image with a bright rectangle (a clear object boundary).</summary>
    static RgbImage Rectangle(int w, int h, int x0, int y0, int x1, int y1)
    {
        var img = new RgbImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                bool inside = x >= x0 && x < x1 && y >= y0 && y < y1;
                int i = 3 * (y * w + x);
                img.Pixels[i] = (byte)(inside ? 230 : 20);
                img.Pixels[i + 1] = (byte)(inside ? 200 : 40);
                img.Pixels[i + 2] = (byte)(inside ? 60 : 90);
            }
        return img;
    }

    [Theory]
    [InlineData(40, 24, 64, 8, 64, 40)]
    [InlineData(30, 30, 64, 8, 64, 64)]
    [InlineData(500, 333, 512, 8, 512, 344)]
    [InlineData(500, 333, 512, 64, 512, 320)]
    [InlineData(40, 24, 32, 16, 32, 16)]
    [InlineData(3, 100, 16, 8, 8, 16)]
    public void ProcessedSize_KeepsAspectWithMultiples(int w, int h, int size, int multiple, int ew, int eh)
    {
        var (pw, ph) = EdgePipeline.ProcessedSize(w, h, size, multiple);
        Assert.Equal((ew, eh), (pw, ph));
    }

    [Fact]
    public void EdgesCommand_EndToEndOnFixture_WritesOutputsAndReportsCorruptImage()
    {
        using var dir = new TempDir();
        string input = Path.Combine(dir.Path, "in"), output = Path.Combine(dir.Path, "out");
        Directory.CreateDirectory(input);
        ImageIO.WriteRgbPng(Path.Combine(input, "a.png"), Rectangle(40, 24, 10, 6, 30, 18));
        ImageIO.WriteRgbPng(Path.Combine(input, "b.png"), Rectangle(30, 30, 5, 5, 20, 25));
        var good = File.ReadAllBytes(Path.Combine(input, "b.png"));
        File.WriteAllBytes(Path.Combine(input, "c_corrupt.png"), good[..(good.Length / 2)]);

        // one line for the corrupt image, one summary line naming the output folder
        var r = CliRun.Fails(1, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", input, "--out", output,
            "--timesteps", "900,500,100", "--size", "32", "--seed", "7" }, new[] { Path.Combine(input, "c_corrupt.png"), output }, new[] { Path.Combine(output, "c_corrupt.json") }, errors: 2);
        _out.WriteLine(r.Err);
        Assert.Contains("c_corrupt.png", r.Err);
        Assert.False(File.Exists(Path.Combine(output, "c_corrupt.json")));

        foreach (var (stem, w, h) in new[] { ("a", 40, 24), ("b", 30, 30) })
        {
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, stem + ".json")));
            var root = json.RootElement;
            int chosen = root.GetProperty("chosen_timestep").GetInt32();
            Assert.Contains(chosen, new[] { 500, 100 });   // PeakKL picks n ≥ 1
            Assert.Equal(new[] { 900, 500, 100 }, root.GetProperty("timesteps").EnumerateArray().Select(e => e.GetInt32()));
            var curve = root.GetProperty("kl_curve").EnumerateArray().ToList();
            Assert.Equal(JsonValueKind.Null, curve[0].ValueKind);
            Assert.True(curve[1].GetDouble() > 0 && curve[2].GetDouble() > 0);
            Assert.Equal(w, root.GetProperty("width").GetInt32());
            Assert.Equal(h, root.GetProperty("height").GetInt32());

            using var f = SafeTensorsFile.Open(Path.Combine(output, stem + ".edges.safetensors"));
            using var edges = f.Read("edges");
            Assert.Equal(new long[] { h, w }, edges.shape);
            Assert.False(edges.isnan().any().item<bool>());
            Assert.True(edges.min().item<float>() >= 0);
            var png = ImageIO.ReadGray(Path.Combine(output, stem + ".ternary.png"), out int pw, out int ph, out _);
            Assert.Equal((w, h), (pw, ph));
            Assert.Contains(png, v => v == 255);   // some edge pixels
            Assert.Contains(png, v => v == 0);     // some interior pixels
            Assert.All(png, v => Assert.Contains(v, new byte[] { 0, 128, 255 }));
        }
    }

    [Fact]
    public void EdgesCommand_Workers_WriteTheSameEdgesAsOneWorker()
    {
        using var dir = new TempDir();
        string input = Path.Combine(dir.Path, "in");
        Directory.CreateDirectory(input);
        for (int k = 0; k < 5; k++) ImageIO.WriteRgbPng(Path.Combine(input, $"s{k}.png"), Rectangle(32, 24, 2 + k, 3, 20 + k, 18));
        foreach (var w in new[] { "1", "3" })
            Assert.Equal(0, DiffEggApp.Run(new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", input, "--out", Path.Combine(dir.Path, "w" + w),
                "--timesteps", "500,100", "--size", "32", "--workers", w }));
        for (int k = 0; k < 5; k++)
        {
            using var a = SafeTensorsFile.Open(Path.Combine(dir.Path, "w1", $"s{k}.edges.safetensors"));
            using var b = SafeTensorsFile.Open(Path.Combine(dir.Path, "w3", $"s{k}.edges.safetensors"));
            using var ea = a.Read("edges");
            using var eb = b.Read("edges");
            // one thread per op instead of several changes only float summation order
            Assert.True((ea - eb).abs().max().item<float>() <= 1e-5f * ea.abs().max().item<float>(), $"s{k}: edges differ between 1 and 3 workers");
            string Chosen(string w) => JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, w, $"s{k}.json"))).RootElement.GetProperty("chosen_timestep").ToString();
            Assert.Equal(Chosen("w1"), Chosen("w3"));
        }
        CliRun.Fails(2, new[] { "edges", "--input", input, "--out", dir.File("x"), "--workers", "0" }, new[] { "--workers 0: must be at least 1" }, new[] { dir.File("x") });
        CliRun.Fails(2, new[] { "edges", "--input", input, "--out", dir.File("x"), "--workers", "2", "--adapter", dir.Path }, new[] { "--workers: not with --adapter" }, new[] { dir.File("x") });
        Assert.False(Directory.Exists(dir.File("x")));
    }

    [Fact]
    public void Pipeline_IsDeterministic_AndFixedTimestepSkipsPeakKL()
    {
        using var scope = torch.NewDisposeScope();
        using var model = DiffusionModelFolder.Load(TestPaths.Sd15Tiny);
        var img = Rectangle(24, 16, 6, 4, 18, 12);
        using var p = new EdgePipeline(model, new EdgePipelineOptions { FixedTimestep = 300, Size = 48, Seed = 1 });
        Assert.Equal(16, p.SizeMultiple);   // fixture: VAE ×2, UNet ×8
        using var r1 = p.Run(img);
        using var r2 = p.Run(img);
        Assert.Equal(300, r1.ChosenTimestep);
        Assert.Equal(new[] { 300 }, r1.Timesteps);
        Assert.Equal((48, 32), (r1.ProcessedWidth, r1.ProcessedHeight));
        Assert.Equal((24, 16), (r1.AttentionWidth, r1.AttentionHeight));   // the fixture VAE halves the processed image
        Assert.Equal(new long[] { 16, 24 }, r1.Edges.shape);               // original image size
        Assert.True(r1.Edges.eq(r2.Edges).all().item<bool>());
        // Ternary is Alg 2 of the continuous map written next to it
        Assert.True(TernaryEdges.Classify(r1.Edges).eq(r1.Ternary).all().item<bool>());
    }

    [Fact]
    public void DefaultTimesteps_AreReadOnly_AndEveryOptionsObjectGetsItsOwnCopy()
    {
        Assert.Throws<NotSupportedException>(() => ((IList<int>)EdgePipelineOptions.DefaultTimesteps)[0] = 999);
        Assert.Equal(EdgePipelineOptions.DefaultTimestepList, string.Join(",", EdgePipelineOptions.DefaultTimesteps));
        var a = new EdgePipelineOptions();
        a.Timesteps[0] = 999;
        Assert.NotEqual(999, new EdgePipelineOptions().Timesteps[0]);
        Assert.NotEqual(999, EdgePipelineOptions.DefaultTimesteps[0]);
        Assert.Equal(EdgePipelineOptions.DefaultTimesteps, new DiffEgg.Demo.DemoOptions { OutDir = "x" }.Timesteps);
        Assert.Equal(EdgePipelineOptions.DefaultTimesteps, new DiffEgg.Evaluation.EdgeBenchmarkOptions().Timesteps);
    }

    [Fact]
    public void EdgesCommand_BadOptions_AreOneLineErrors()
    {
        CliRun.Fails(2, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", ".", "--out", ".", "--metric", "foo" }, new[] { "--metric" });
        using var dir = new TempDir();
        ImageIO.WriteRgbPng(dir.File("x.png"), Rectangle(8, 8, 2, 2, 6, 6));
        CliRun.Fails(1, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", dir.Path, "--out", dir.File("o"), "--timesteps", "100,500" }, new[] { "100" }, new[] { dir.File("o") });
        CliRun.Fails(1, new[] { "edges", "--model", dir.Path, "--input", dir.Path, "--out", dir.File("o") }, new[] { dir.Path }, new[] { dir.File("o") });
    }
    /// <summary>A folder with a.png (40×24) and trunc.png (a truncated PNG).</summary>
    static (string Input, string A, string Trunc) PhotoFolder(TempDir dir)
    {
        string input = dir.File("in");
        Directory.CreateDirectory(input);
        string a = Path.Combine(input, "a.png"), trunc = Path.Combine(input, "trunc.png");
        ImageIO.WriteRgbPng(a, Rectangle(40, 24, 10, 6, 30, 18));
        var bytes = File.ReadAllBytes(a);
        File.WriteAllBytes(trunc, bytes[..(bytes.Length - 30)]);
        return (input, a, trunc);
    }

    [Fact]
    public void EdgesCommand_SaysTheProcessingSize_AndReportsFailuresOnStderrNamingThePathOnce()
    {
        using var dir = new TempDir();
        var (input, _, trunc) = PhotoFolder(dir);
        string output = dir.File("out");
        var r = CliRun.Fails(1, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", input, "--out", output, "--timesteps", "500,100", "--size", "32" },
            new[] { trunc, output }, errors: 2);
        _out.WriteLine(r.Out + r.Err);
        Assert.Contains("a.png: 40×24 → processed at 32×16 (--size 32)\n", r.Out.Replace("\r\n", "\n"));
        Assert.DoesNotContain("trunc", r.Out);
        Assert.Contains($"error: {trunc}: image is truncated", r.ErrLines);
        Assert.Contains($"error: {output}: 1 of 2 image(s) failed and have no edges there", r.ErrLines);
        Assert.All(r.ErrLines, l => Assert.StartsWith("error: ", l));
        Assert.True(File.Exists(Path.Combine(output, "a.json")));
    }

    [Fact]
    public void EdgesCommand_NamesTheFirstTenResizedImagesThenCountsTheRest()
    {
        using var dir = new TempDir();
        var (_, a, _) = PhotoFolder(dir);
        string many = dir.File("many");
        Directory.CreateDirectory(many);
        for (int i = 0; i < 12; i++) File.Copy(a, Path.Combine(many, $"p{i:00}.png"));
        var r = CliRun.Capture("edges", "--model", TestPaths.Sd15Tiny, "--input", many, "--out", dir.File("out"), "--fixed-timestep", "100", "--size", "32");
        Assert.True(r.Code == 0, r.Err);
        var lines = r.Out.Replace("\r\n", "\n").Split('\n');
        Assert.Equal(10, lines.Count(l => l.Contains(": 40×24 → processed at 32×16 (--size 32)")));
        Assert.Contains("… and 2 more image(s) processed at another size than their own (--size 32)", lines);
        Assert.Equal(12, Directory.GetFiles(dir.File("out"), "*.ternary.png").Length);
    }

    [Fact]
    public void EdgesCommand_NativeSizeMessage_AndNothingWrittenWhenEveryImageFails()
    {
        using var dir = new TempDir();
        var (input, a, trunc) = PhotoFolder(dir);
        // the fixture's native size is sample_size 16 × VAE factor 2 = 32
        var r = CliRun.Capture("edges", "--model", TestPaths.Sd15Tiny, "--input", a, "--out", dir.File("one"), "--fixed-timestep", "100");
        Assert.Equal(0, r.Code);
        Assert.Contains("a.png: 40×24 → processed at 32×16 (model native size 32; --size to change)", r.Out);

        string output = dir.File("out");
        r = CliRun.Fails(1, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", trunc, "--out", output, "--fixed-timestep", "100" }, new[] { output, trunc }, new[] { output }, errors: 2);
        Assert.Contains($"error: {output}: nothing written: all 1 image(s) failed", r.ErrLines);
        Assert.False(Directory.Exists(output));
        Assert.DoesNotContain("written to", r.Out);
    }

    [Fact]
    public void EdgesCommand_RefusesAnImageWhoseEstimateExceedsTheMemoryBudget()
    {
        using var dir = new TempDir();
        var (_, a, _) = PhotoFolder(dir);
        string output = dir.File("out");
        var r = CliRun.Fails(1, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", a, "--out", output, "--size", "32", "--max-memory", "1MB" }, new[] { "--max-memory" }, errors: 2);
        var line = Assert.Single(r.ErrLines, l => l.Contains("needs about"));
        Assert.Matches(@"^error: .*a\.png: processing at 32×16 needs about [0-9.]+ [KMG]B \(estimated peak\), more than the --max-memory budget of 1 MB", line);
        Assert.False(File.Exists(Path.Combine(output, "a.json")));
        r = CliRun.Fails(2, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", a, "--out", output, "--max-memory", "lots" }, new[] { "--max-memory" });
        Assert.StartsWith("error: --max-memory lots: expected a size", Assert.Single(r.ErrLines));
    }

    [Fact]
    public void EdgesCommand_ChecksTheOutputBeforeLoadingTheModel()
    {
        using var dir = new TempDir();
        var (_, a, _) = PhotoFolder(dir);
        // the model folder does not exist either: the output is checked first, so the error is about it
        var r = CliRun.Fails(1, new[] { "edges", "--model", dir.File("no-model"), "--input", a, "--out", "/proc/nope" }, new[] { "/proc/nope", "--out" });
        Assert.StartsWith("error: /proc/nope: --out: cannot write there", Assert.Single(r.ErrLines));
    }

    [Fact]
    public void EdgesCommand_NotesADroppedAlphaChannel_AndRunsOnTheColours()
    {
        using var dir = new TempDir();
        // 32×16 RGBA: left half opaque red, right half half-transparent blue
        var samples = new int[32 * 16 * 4];
        for (int i = 0; i < 32 * 16; i++)
        {
            bool left = i % 32 < 16;
            samples[4 * i] = left ? 220 : 20; samples[4 * i + 1] = 30; samples[4 * i + 2] = left ? 20 : 220; samples[4 * i + 3] = left ? 255 : 128;
        }
        string png = dir.File("rgba.png");
        File.WriteAllBytes(png, TestImages.Png(32, 16, 6, 8, samples));
        var r = CliRun.Capture("edges", "--model", TestPaths.Sd15Tiny, "--input", png, "--out", dir.File("out"), "--fixed-timestep", "100");
        Assert.Equal(0, r.Code);
        Assert.Equal($"note: {png}: has transparent pixels; the alpha channel is dropped (colours used as stored, not composited)", Assert.Single(r.ErrLines));
        Assert.True(File.Exists(dir.File("out/rgba.json")));
        Assert.DoesNotContain("processed at", r.Out); // 32×16 is the fixture's native long side and a multiple of 16
    }

    [Fact]
    public void EdgesCommand_EstimateOnly_NeedsNoWeights_AndWritesNothing()
    {
        using var dir = new TempDir();
        var (_, a, _) = PhotoFolder(dir);
        // a weight-less folder: only the fixture's unet/ and vae/ config.json
        string configs = dir.File("configs");
        foreach (var part in new[] { "unet", "vae" })
        {
            Directory.CreateDirectory(Path.Combine(configs, part));
            File.Copy(TestPaths.Fixture(part, "config.json"), Path.Combine(configs, part, "config.json"));
        }
        string output = dir.File("out");
        var r = CliRun.Capture("edges", "--model", configs, "--input", a, "--out", output, "--size", "32", "--timesteps", "500,100", "--estimate-only");
        Assert.Equal(0, r.Code);
        var line = Assert.Single(r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var m = System.Text.RegularExpressions.Regex.Match(line, @"^a\.png: 40×24 → processed at 32×16: estimated peak .* \((\d+) bytes\) on top of the loaded model, 2 UNet pass\(es\)$");
        Assert.True(m.Success, line);
        using var model = DiffusionModelFolder.Load(TestPaths.Sd15Tiny);
        Assert.Equal(EdgeMemory.EstimateBytes(model, 32, 16, 2), long.Parse(m.Groups[1].Value));
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void Pipeline_ReportsEveryUNetPass()
    {
        using var model = DiffusionModelFolder.Load(TestPaths.Sd15Tiny);
        using var p = new EdgePipeline(model, new EdgePipelineOptions { Timesteps = new[] { 700, 300, 100 }, Size = 32 });
        Assert.Equal(3, p.Passes);
        var calls = new List<(int, int)>();
        using var r = p.Run(Rectangle(24, 16, 6, 4, 18, 12), (done, total) => calls.Add((done, total)));
        Assert.Equal(new[] { (1, 3), (2, 3), (3, 3) }, calls);
    }
}

public class PixelSpaceModelTests
{
    readonly ITestOutputHelper _out;
    public PixelSpaceModelTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    [Fact]
    public void FreshPixelUNet_SavesAndReloads_AndRunsTheEdgePipelineWithoutVae()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var dir = new TempDir();
        var cfg = DiffEgg.Models.UNet.UNet2DConditionConfig.StableDiffusion15 with
        {
            InChannels = 3, OutChannels = 3, BlockOutChannels = new[] { 16, 16, 16, 16 }, NormNumGroups = 4,
            AttentionHeads = new[] { 2, 2, 2, 2 }, CrossAttentionDim = 32, LayersPerBlock = 1, SampleSize = 32,
        };
        torch.manual_seed(5);
        using var unet = new DiffEgg.Models.UNet.UNet2DConditionModel(cfg);
        unet.SaveFolder(dir.File("unet"));
        Directory.CreateDirectory(dir.File("text_encoder"));
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(TestPaths.Fixture("text_encoder", f), Path.Combine(dir.File("text_encoder"), f));

        using var model = DiffusionModelFolder.Load(dir.Path);
        Assert.Null(model.Vae);
        Assert.Equal(cfg.ToJson(), model.Unet.Config.ToJson());
        var x = torch.randn(1, 3, 16, 24);
        var ehs = torch.randn(1, 77, 32);
        var t = torch.tensor(new long[] { 300 });
        ParityAssert.Close(_out, "saved/reloaded fresh UNet", unet.forward(x, t, ehs), model.Unet.forward(x, t, ehs), 0, 0);

        using var p = new EdgePipeline(model, new EdgePipelineOptions { Timesteps = new[] { 700, 300 }, Size = 24 });
        Assert.Equal(8, p.SizeMultiple);    // no VAE: pixels go straight into the UNet (×8)
        using var r = p.Run(new RgbImage(30, 20));
        Assert.Equal((24, 16), (r.ProcessedWidth, r.ProcessedHeight));
        Assert.Equal((24, 16), (r.AttentionWidth, r.AttentionHeight));
        Assert.Equal(new long[] { 20, 30 }, r.Edges.shape);
        Assert.False(r.Edges.isnan().any().item<bool>());
    }
}
