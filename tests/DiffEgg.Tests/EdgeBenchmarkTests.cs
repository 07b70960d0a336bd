using DiffEgg.Tests.Cli;
using System.Text.Json;
using DiffEgg.Cli;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.Evaluation;
using DiffEgg.Formats;
using DiffEgg.Models;
using DiffEgg.Models.Schedulers;
using DiffEgg.Training;
using TorchSharp;

namespace DiffEgg.Tests;

/// <summary>Shared fixture: 3 synthetic 32×32 test scenes and a freshly initialised tiny pixel-space UNet (attention at 16×16) in a temp folder.</summary>
public sealed class EdgeBenchmarkFixture : IDisposable
{
    readonly TempDir _temp = new("diffegg-benchedges");
    public string Root => _temp.Path;
    public string Data => Path.Combine(Root, "synth");
    public string Model => Path.Combine(Root, "model");

    public EdgeBenchmarkFixture()
    {
        if (DiffEggApp.Run(new[] { "synth", "--count", "3", "--size", "32", "--split", "test", "--seed", "2", "--hard-prob", "1", "--out", Data }) != 0)
            throw new InvalidOperationException("synth failed");
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Tiny, 11);
        unet.eval();
        using var sched = DDPMScheduler.StableDiffusion15();
        using var g = new torch.Generator(5);
        using var nullEmb = torch.randn(new long[] { 1, 3, 16 }, generator: g);
        PixelModelFolder.Save(Model, unet, nullEmb, sched, fp16: false);
    }

    public void Dispose() => _temp.Dispose();
}

[Collection("TorchThreads")]
public sealed class EdgeBenchmarkTests : IClassFixture<EdgeBenchmarkFixture>
{
    readonly EdgeBenchmarkFixture _f;
    public EdgeBenchmarkTests(EdgeBenchmarkFixture f) => _f = f;

    static readonly string[] ValueKeys = { "all_precision", "all_recall", "all_f1", "all_auc", "hard_precision", "hard_recall", "hard_f1", "hard_auc" };

    static JsonElement ReadJson(string path) => JsonDocument.Parse(File.ReadAllBytes(path)).RootElement;

    [Fact]
    public void ModelRunHasEveryVariantRowWithValuesInUnitIntervalAndSobelRowsMatchTheSobelOnlyPath()
    {
        string json = Path.Combine(_f.Root, "model.json");
        Assert.Equal(0, DiffEggApp.Run(new[] { "bench-edges", "--model", _f.Model, "--data", _f.Data, "--timesteps", "900,500,100",
            "--fixed-timesteps", "10,200", "--metrics", "kl,jsd,l2,cos", "--json", json }));
        var root = ReadJson(json);
        Assert.Equal(3, root.GetProperty("scenes").GetInt32());
        Assert.Equal("16x16", root.GetProperty("resolution").GetString());
        var rows = root.GetProperty("rows").EnumerateArray().ToList();
        var expected = new List<string>();
        foreach (var m in new[] { "kl", "jsd", "l2", "cos" }) expected.Add($"DiffEGG PeakKL, {m}");
        foreach (var t in new[] { 10, 200 }) foreach (var m in new[] { "kl", "jsd", "l2", "cos" }) expected.Add($"DiffEGG t = {t}, {m}");
        expected.Add("sobel, blur 1.5");
        expected.Add("sobel-max, blur 1.5");
        Assert.Equal(expected, rows.Select(r => r.GetProperty("method").GetString()!).ToList());
        foreach (var r in rows)
        {
            Assert.Equal(3, r.GetProperty("images").GetInt32());
            Assert.True(r.GetProperty("hard_images").GetInt32() > 0, "--hard-prob 1 scenes must have a hard boundary");
            foreach (var k in ValueKeys)
            {
                double v = r.GetProperty(k).GetDouble(); // null would throw: every value is defined here
                Assert.InRange(v, 0.0, 1.0);
            }
        }
        // PeakKL's histogram: one entry per scene, and never the first (noisiest) timestep, which has no predecessor.
        var hist = root.GetProperty("peakkl_chosen_timesteps").EnumerateObject().ToList();
        Assert.Equal(3, hist.Sum(p => p.Value.GetInt32()));
        Assert.All(hist, p => Assert.Contains(p.Name, new[] { "500", "100" }));

        // The Sobel rows equal the Sobel-only path at the same resolution (edge size 16 = the attention grid) and tolerance.
        foreach (var (baseline, row) in new[] { ("sobel", rows[^2]), ("sobel-max", rows[^1]) })
        {
            string sj = Path.Combine(_f.Root, baseline + ".json");
            Assert.Equal(0, DiffEggApp.Run(new[] { "bench-edges", "--data", _f.Data, "--baseline", baseline, "--blur", "1.5", "--edge-size", "16", "--json", sj }));
            var only = ReadJson(sj).GetProperty("rows")[0];
            foreach (var k in ValueKeys) Assert.Equal(only.GetProperty(k).GetDouble(), row.GetProperty(k).GetDouble());
        }
    }

    [Fact]
    public void DerivedRowsEqualSeparateEdgePipelineRuns()
    {
        // The benchmark runs the UNet once per timestep and derives every variant; each row must equal a separate EdgePipeline run.
        var items = EdgeBenchmark.Load(_f.Data).Take(1).ToList();
        using var model = DiffusionModelFolder.Load(_f.Model);
        var opts = new EdgeBenchmarkOptions
        {
            Timesteps = new[] { 700, 300, 100 }, FixedTimesteps = new[] { 50, 300 }, Metrics = new[] { EdgeMetric.KL, EdgeMetric.Cosine }, Seed = 3,
            Sobel = Array.Empty<SobelVariant>(),
        };
        var report = EdgeBenchmark.RunDiffEgg(model, items, opts);
        Assert.Empty(report.Failed);
        Assert.Equal(6, report.Rows.Count);
        var img = ImageIO.ReadRgb(items[0].ImagePath);
        var ids = PanopticFiles.ReadPng(items[0].PanopticPath, out int gw, out int gh);

        EdgeSummary Separate(int? fixedT, EdgeMetric metric, out int chosen)
        {
            using var p = new EdgePipeline(model, new EdgePipelineOptions { Timesteps = opts.Timesteps, FixedTimestep = fixedT, Metric = metric, Seed = 3, Size = 0 });
            using var r = p.Run(img);
            chosen = r.ChosenTimestep;
            var map = r.EdgesAttention.data<float>().ToArray();
            return EdgeQuality.Aggregate(new[] { EdgeQuality.Score(map, r.AttentionHeight, r.AttentionWidth, ids, gh, gw, items[0].HardPairs, opts.Quality, items[0].Things) });
        }

        foreach (var row in report.Rows)
        {
            var s = Separate(row.FixedTimestep, row.Metric!.Value, out int chosen);
            Assert.Equal(s, row.Summary);
            if (row.PeakKL) Assert.Equal(1, report.ChosenTimesteps[chosen]);
        }
    }

    [Fact]
    public void BadOptionsFailWithExitCodes()
    {
        CliRun.Fails(2, new[] { "bench-edges", "--data", _f.Data, "--model", _f.Model, "--metrics", "kl,euclid" }, new[] { "--metrics" });
        CliRun.Fails(2, new[] { "bench-edges", "--data", _f.Data, "--model", _f.Model, "--fixed-timesteps", "10,x" }, new[] { "--fixed-timesteps" });
        // timesteps must strictly decrease (checked by the pipeline): a one-line user error, exit 1
        var err = CliRun.Fails(1, new[] { "bench-edges", "--data", _f.Data, "--model", _f.Model, "--timesteps", "100,500", "--limit", "1" }, new[] { "100" }).Err;
        Assert.StartsWith("error: --timesteps: timesteps must strictly decrease", err.Trim());   // the library's option named by this command's flag
        err = CliRun.Fails(1, new[] { "bench-edges", "--data", _f.Data, "--model", _f.Model, "--fixed-timesteps", "5000", "--limit", "1" }, new[] { "5000" }).Err;
        Assert.StartsWith("error: --fixed-timesteps: timestep 5000 is outside the model's schedule", err.Trim());
        CliRun.Fails(1, new[] { "bench-edges", "--data", _f.Data, "--model", Path.Combine(_f.Root, "missing"), "--limit", "1" }, new[] { Path.Combine(_f.Root, "missing") });
    }

    [Fact]
    public void SkeletonCoverKeepsAOnePixelLineOneCellWide()
    {
        // a one-pixel diagonal and a one-pixel row on 8×8: on 4×4 every covered cell is 1, nothing else; back on 8×8 the cells repeat
        var e = new bool[64];
        for (int i = 0; i < 8; i++) { e[i * 8 + i] = true; e[5 * 8 + i] = true; }
        var c = EdgeBenchmark.CoverTo(e, 8, 8, 4, 4);
        var expect = new float[16];
        for (int i = 0; i < 4; i++) { expect[i * 4 + i] = 1; expect[2 * 4 + i] = 1; }
        Assert.Equal(expect, c);
        var up = EdgeBenchmark.CoverTo(c.Select(v => v > 0).ToArray(), 4, 4, 8, 8);
        for (int y = 0; y < 8; y++) for (int x = 0; x < 8; x++) Assert.Equal(c[(y / 2) * 4 + x / 2], up[y * 8 + x]);
        Assert.Equal(e.Select(v => v ? 1f : 0f), EdgeBenchmark.CoverTo(e, 8, 8, 8, 8));
    }
}
