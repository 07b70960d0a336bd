using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests.Training;

[Collection("TorchThreads")]
public class BaseModelTrainerTests
{
    static TrainBaseOptions Tiny(string data, string outDir, int steps) => new()
    {
        DataDir = data, OutDir = outDir, Config = "tiny", Steps = steps, Batch = 2, Accumulate = 2, Size = 16, Crop = 12,
        LearningRate = 1e-3, WarmupSteps = 2, Seed = 11, Threads = 1, LowTBias = 0.5, Ema = 0.9, CheckpointEvery = 2, Fp16 = false, NullTokens = 2,
    };

    static byte[] Weights(string modelDir) => File.ReadAllBytes(Path.Combine(modelDir, "unet", "diffusion_pytorch_model.safetensors"));

    [Fact]
    public void SameSeedOnOneThreadGivesIdenticalWeights()
    {
        using var data = TrainingTestUtil.MakeImageFolder();
        using var root = new TempDir("diffegg-det");
        var a = BaseModelTrainer.Run(Tiny(data, Path.Combine(root, "a"), 3));
        var b = BaseModelTrainer.Run(Tiny(data, Path.Combine(root, "b"), 3));
        Assert.Equal(3, a.StepsDone);
        Assert.Equal(a.FinalLoss, b.FinalLoss);
        Assert.Equal(Weights(Path.Combine(root, "a")), Weights(Path.Combine(root, "b")));
        // a different seed changes the weights (the comparison above is not vacuous)
        BaseModelTrainer.Run(Tiny(data, Path.Combine(root, "c"), 3) with { Seed = 12 });
        Assert.NotEqual(Weights(Path.Combine(root, "a")), Weights(Path.Combine(root, "c")));
    }

    [Fact]
    public void ResumeFromCheckpointEqualsUninterruptedRun()
    {
        using var data = TrainingTestUtil.MakeImageFolder();
        using var root = new TempDir("diffegg-resume");
        string full = Path.Combine(root, "full"), split = Path.Combine(root, "split");
        BaseModelTrainer.Run(Tiny(data, full, 4));
        BaseModelTrainer.Run(Tiny(data, split, 2));
        Assert.True(File.Exists(Path.Combine(split + ".checkpoint", "optimizer.bin")));
        var r = BaseModelTrainer.Run(Tiny(data, split, 4) with { Resume = true });
        Assert.Equal(4, r.StepsDone);
        Assert.Equal(Weights(full), Weights(split));
        var lf = TrainingLog.ReadCsv(Path.Combine(full, "training", "loss.csv"), long.MaxValue).Rows.Select(x => x.Loss);
        var ls = TrainingLog.ReadCsv(Path.Combine(split, "training", "loss.csv"), long.MaxValue).Rows.Select(x => x.Loss);
        Assert.Equal(lf, ls);
        // changing a trajectory option on resume is refused, naming the option
        var e = Assert.Throws<DiffEggException>(() => BaseModelTrainer.Run(Tiny(data, split, 6) with { Resume = true, Batch = 3 }));
        Assert.Contains("options.batch", e.Message);
    }

    [Fact]
    public void TrainingStepsLeaveNoLiveTensorsBehind()
    {
        // Live tensor wrappers left by a whole run must not grow with the number of steps (every step inside a dispose scope,
        // EMA/optimizer/data disposed). Building a UNet currently leaves a fixed number of wrappers (weight
        // initialisation inside TorchSharp: nn.Conv2d leaves one extra wrapper per layer), the same for every run, so runs of different length are compared.
        using var data = TrainingTestUtil.MakeImageFolder();
        using var outDir = new TempDir("diffegg-leak", "m");
        BaseModelTrainer.Run(Tiny(data, outDir, 1)); // warm-up: lazily created native state
        long c0 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        BaseModelTrainer.Run(Tiny(data, outDir, 1));
        long c1 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        BaseModelTrainer.Run(Tiny(data, outDir, 5));
        long c2 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.Equal(c1 - c0, c2 - c1);
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Tiny, 0);
        long perModel = DisposeScopeManager.Statistics.ThreadTotalLiveCount - c2 - unet.parameters().Count();
        Assert.True(c1 - c0 <= perModel + 1, $"a 1-step run leaves {c1 - c0} tensors, building the UNet alone {perModel}");
    }

    [Fact]
    public void CsvAndPlotAreWritten()
    {
        using var data = TrainingTestUtil.MakeImageFolder();
        using var outDir = new TempDir("diffegg-log", "m");
        var r = BaseModelTrainer.Run(Tiny(data, outDir, 3));
        var lines = File.ReadAllLines(Path.Combine(outDir, "training", "loss.csv"));
        Assert.Equal("step,loss,lr,seconds", lines[0]);
        Assert.Equal(4, lines.Length);
        var rows = TrainingLog.ReadCsv(Path.Combine(outDir, "training", "loss.csv"), long.MaxValue).Rows;
        Assert.Equal(new long[] { 1, 2, 3 }, rows.Select(x => x.Step));
        Assert.Equal(new[] { 5e-4, 1e-3, 1e-3 }, rows.Select(x => x.LearningRate)); // linear warm-up over 2 steps
        Assert.All(rows, x => Assert.True(x.Loss > 0 && double.IsFinite(x.Loss)));
        Assert.Equal(r.FinalLoss, rows[^1].Loss);
        var png = ImageIO.ReadRgb(Path.Combine(outDir, "training", "loss.png"));
        Assert.Equal((900, 450), (png.Width, png.Height));
        Assert.Contains(png.Pixels, v => v < 100); // something is drawn on the white canvas
    }

    [Fact]
    public void EmaFollowsTheWarmedUpDecayFormula()
    {
        using var p = torch.ones(3);
        using var ema = new ExponentialMovingAverage(new[] { ("w", p) }, decay: 0.9);
        Assert.Equal(2.0 / 11.0, ema.DecayAt(1), 12);
        Assert.Equal(0.9, ema.DecayAt(1000), 12);
        p.fill_(3.0);
        ema.Update(1); // d = 2/11: e = 2/11·1 + 9/11·3
        Assert.Equal(2.0 / 11 + 27.0 / 11, ema["w"][0].item<float>(), 5);
        p.fill_(0.0);
        ema.Update(1000); // d = 0.9
        Assert.Equal(0.9 * (29.0 / 11), ema["w"][1].item<float>(), 5);
    }

    [Fact]
    public void LowTimestepBiasHasTheDocumentedMixtureShape()
    {
        var s = new TimestepSampler(1000, 0.5, 100);
        Assert.Equal(1.0, Enumerable.Range(0, 1000).Sum(s.Probability), 9);
        Assert.Equal(0.0005 + 0.005, s.Probability(10), 12);
        Assert.Equal(0.0005, s.Probability(500), 12);
        using var g = new torch.Generator(5);
        using var t = s.Sample(40000, g);
        var v = t.data<long>().ToArray();
        Assert.All(v, x => Assert.InRange(x, 0, 999));
        double low = v.Count(x => x < 100) / (double)v.Length;
        Assert.InRange(low, 0.54, 0.56);          // 0.5 + 0.5·0.1 = 0.55 (σ ≈ 0.0025)
        var high = v.Where(x => x >= 100).ToArray();
        Assert.InRange(high.Average(), 540, 559); // uniform over 100..999: mean 549.5
        double lowMean = v.Where(x => x < 100).Average();
        Assert.InRange(lowMean, 47, 52);          // uniform over 0..99: mean 49.5
        using var g2 = new torch.Generator(5);
        using var none = new TimestepSampler(1000, 0, 100).Sample(40000, g2);
        Assert.InRange(none.lt(100).to_type(ScalarType.Float32).mean().item<float>(), 0.09, 0.11);
    }

    [Fact]
    public void BatchesAreCroppedFlippedAndScaled()
    {
        using var data = TrainingTestUtil.MakeImageFolder(count: 3);
        using var imgs = TrainingImages.Load(data, 16);
        Assert.Equal(3, imgs.Count);
        using var g = new torch.Generator(1);
        using var b = imgs.Batch(5, 8, g);
        Assert.Equal(new long[] { 5, 3, 8, 8 }, b.shape);
        Assert.True(b.min().item<float>() >= -1 && b.max().item<float>() <= 1);
        using var g1 = new torch.Generator(9);
        using var g2 = new torch.Generator(9);
        using var b1 = imgs.Batch(4, 16, g1);
        using var b2 = imgs.Batch(4, 16, g2);
        Assert.True(b1.equal(b2).all().item<bool>());
    }

    [Fact]
    public void CropCurriculumSwitchesToWholeImagesAfterFullFrom()
    {
        var o = Tiny("unused", "unused", 5) with { FullFrom = 2, FullBatch = 1 };
        Assert.Equal((2, 12), o.PhaseAt(1));
        Assert.Equal((2, 12), o.PhaseAt(2));
        Assert.Equal((1, 16), o.PhaseAt(3));
        Assert.Equal((2, 16), (o with { FullBatch = 0 }).PhaseAt(3));
        Assert.Equal((2, 12), (o with { FullFrom = 0 }).PhaseAt(5));
        var bad = Assert.Throws<InvalidOptionException>(() => (o with { Crop = 0 }).Validate());
        Assert.Equal((nameof(o.FullFrom), "needs Crop > 0: without crops every step already uses whole images"), (bad.Option, bad.Problem));
        Assert.Equal("--full-from: needs Crop > 0: without crops every step already uses whole images", DiffEgg.Cli.OptionFlags.Message(bad, DiffEgg.Cli.OptionFlags.Training));

        using var data = TrainingTestUtil.MakeImageFolder();
        using var root = new TempDir("diffegg-curriculum");
        string a = Path.Combine(root, "a");
        var statuses = new List<string>();
        var r = BaseModelTrainer.Run(Tiny(data, a, 2) with { FullFrom = 1, FullBatch = 1 }, status: statuses.Add);
        Assert.Equal(2, r.StepsDone);
        Assert.Contains(statuses, m => m.Contains("whole 16×16 images, batch 1"));
        // the curriculum is part of the trajectory: a resume with another --full-from is refused, naming it
        var e = Assert.Throws<DiffEggException>(() => BaseModelTrainer.Run(Tiny(data, a, 4) with { FullFrom = 3, FullBatch = 1, Resume = true }));
        Assert.Contains("options.full_from", e.Message);
    }
}
