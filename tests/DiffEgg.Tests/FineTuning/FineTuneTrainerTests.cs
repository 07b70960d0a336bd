using DiffEgg.Common;
using DiffEgg.FineTuning;
using DiffEgg.Training;
using TorchSharp;
using Xunit.Abstractions;

namespace DiffEgg.Tests.FineTuning;

[Collection("TorchThreads")]
public class FineTuneTrainerTests : IClassFixture<FineTuneTrainerTests.TinyModelFixture>
{
    /// <summary>One tiny model folder for the class, deleted after its last test.</summary>
    public sealed class TinyModelFixture : IDisposable
    {
        public TinyModelFixture() { TorchRuntime.EnsureLoaded(); Dir = FineTuneTestUtil.TinyModel(); }
        public TempDir Dir { get; }
        public void Dispose() => Dir.Dispose();
    }

    readonly ITestOutputHelper _out;
    readonly string _model;
    public FineTuneTrainerTests(ITestOutputHelper output, TinyModelFixture model) { _out = output; _model = model.Dir.Path; TorchRuntime.EnsureLoaded(); }

    FineTuneOptions Tiny(string data, string edges, string outDir, int steps) => new()
    {
        ModelDir = _model, DataDir = data, EdgesDir = edges, OutDir = outDir, Steps = steps, Batch = 2, Accumulate = 2, Size = 16,
        LearningRate = 5e-3, WarmupSteps = 2, Seed = 5, Threads = 1, CheckpointEvery = 2, Fp16 = false, FpnChannels = 8, Dropout = 0.1,
    };

    static byte[] Weights(string dir) =>
        File.ReadAllBytes(Path.Combine(dir, "pytorch_lora_weights.safetensors")).Concat(File.ReadAllBytes(Path.Combine(dir, "edge_generator.safetensors"))).ToArray();

    static IEnumerable<double> Losses(string dir) => TrainingLog.ReadCsv(Path.Combine(dir, "training", "loss.csv"), long.MaxValue, "dice", "rec").Rows.Select(r => r.Loss);

    [Fact]
    public void DiceTermHalvesWithinAFewDozenSteps()
    {
        using var dataSet = FineTuneTestUtil.MakeSet(2, 16);
        var (data, edges) = dataSet;
        using var outDir = new TempDir("diffegg-ft-dice", "a");
        var r = FineTuneTrainer.Run(Tiny(data, edges, outDir, 40) with { Accumulate = 1, LearningRate = 1e-2, CheckpointEvery = 100, Dropout = 0 });
        var dice = r.Log.Rows.Select(x => x.Extra![0]).ToList();
        double first = dice.Take(3).Average(), last = dice.Skip(dice.Count - 5).Average();
        _out.WriteLine($"Dice term: first 3 steps {first:F4}, last 5 steps {last:F4}; rec {r.Log.Rows[^1].Extra![1]:E2}");
        Assert.Equal(40, r.StepsDone);
        Assert.True(last <= 0.5 * first, $"the Dice term fell from {first:F4} to {last:F4} only");
        Assert.All(r.Log.Rows, x => Assert.True(double.IsFinite(x.Extra![1]) && x.Extra[1] >= 0));
        Assert.Equal(1.0, r.Fractions.Edge + r.Fractions.Interior + r.Fractions.Uncertain, 9);
        Assert.True(r.Fractions.Interior > 0);
    }

    [Fact]
    public void ResumeAfterACheckpointOrACtrlCEqualsTheUninterruptedRun()
    {
        using var dataSet = FineTuneTestUtil.MakeSet(3, 16);
        var (data, edges) = dataSet;
        using var root = new TempDir("diffegg-ft-resume");
        string full = Path.Combine(root, "full"), split = Path.Combine(root, "split"), cancelled = Path.Combine(root, "cancelled");
        FineTuneTrainer.Run(Tiny(data, edges, full, 4));

        FineTuneTrainer.Run(Tiny(data, edges, split, 2));
        Assert.True(File.Exists(Path.Combine(split + ".checkpoint", "optimizer.bin")));
        var r = FineTuneTrainer.Run(Tiny(data, edges, split, 4) with { Resume = true });
        Assert.Equal(4, r.StepsDone);
        Assert.Equal(Weights(full), Weights(split));
        Assert.Equal(Losses(full), Losses(split));

        // Ctrl-C after step 3 (between checkpoints): the step finishes, a checkpoint is written, --resume continues exactly
        using var cts = new CancellationTokenSource();
        var rc = FineTuneTrainer.Run(Tiny(data, edges, cancelled, 4), p => { if (p.Step == 3) cts.Cancel(); }, cancel: cts.Token);
        Assert.True(rc.Cancelled);
        Assert.Equal(3, rc.StepsDone);
        // a kill in the middle of the next checkpoint swap: only the previous checkpoint (renamed .old) and a partial .tmp exist
        Directory.Move(cancelled + ".checkpoint", cancelled + ".checkpoint.old");
        Directory.CreateDirectory(cancelled + ".checkpoint.tmp");
        File.WriteAllText(Path.Combine(cancelled + ".checkpoint.tmp", "adapter.safetensors"), "partial");
        var rr = FineTuneTrainer.Run(Tiny(data, edges, cancelled, 4) with { Resume = true });
        Assert.Equal(4, rr.StepsDone);
        Assert.Equal(Weights(full), Weights(cancelled));
        Assert.Equal(Losses(full), Losses(cancelled));

        // a changed trajectory option is refused, naming it; a fresh start over an existing checkpoint too
        var e = Assert.Throws<DiffEggException>(() => FineTuneTrainer.Run(Tiny(data, edges, split, 6) with { Resume = true, Batch = 3 }));
        Assert.Contains("options.batch", e.Message);
        var e2 = Assert.Throws<DiffEggException>(() => FineTuneTrainer.Run(Tiny(data, edges, split, 6)));
        Assert.Contains("--resume", e2.Message);
        // a different seed gives different weights (the equalities above are not vacuous)
        FineTuneTrainer.Run(Tiny(data, edges, Path.Combine(root, "other"), 4) with { Seed = 6 });
        Assert.NotEqual(Weights(full), Weights(Path.Combine(root, "other")));
    }

    [Fact]
    public void PseudoEdgesWithoutInteriorAreRefusedNamingTheFix()
    {
        using var dataSet = FineTuneTestUtil.MakeSet(2, 16, interior: false);
        var (data, edges) = dataSet;
        using var outDir = new TempDir("diffegg-ft-nointerior", "a");
        var e = Assert.Throws<DiffEggException>(() => FineTuneTrainer.Run(Tiny(data, edges, outDir, 2)));
        _out.WriteLine(e.Message);
        Assert.Contains("no interior pixels", e.Message);
        Assert.Contains("interior 0.0 %", e.Message);
        Assert.Contains(FineTuneData.NoInteriorHint, e.Message);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void MissingMismatchedOrNonTernaryPseudoEdgesAreRefusedNamingTheFile()
    {
        using var dataSet = FineTuneTestUtil.MakeSet(2, 16);
        var (data, edges) = dataSet;
        using var outDir = new TempDir("diffegg-ft-bad", "a");
        string first = Path.Combine(edges, "s000.ternary.png");
        var good = File.ReadAllBytes(first);

        File.Delete(first);
        var e1 = Assert.Throws<DiffEggException>(() => FineTuneTrainer.Run(Tiny(data, edges, outDir, 2)));
        Assert.Contains(first, e1.Message);
        Assert.Contains("not found", e1.Message);

        DiffEgg.Data.ImageIO.WriteGrayPng(first, new byte[12 * 16], 12, 16);
        var e2 = Assert.Throws<DiffEggException>(() => FineTuneTrainer.Run(Tiny(data, edges, outDir, 2)));
        Assert.Contains(first, e2.Message);
        Assert.Contains("12×16", e2.Message);
        Assert.Contains("16×16", e2.Message);

        DiffEgg.Data.ImageIO.WriteGrayPng(first, Enumerable.Repeat((byte)77, 256).ToArray(), 16, 16);
        var e3 = Assert.Throws<DiffEggException>(() => FineTuneTrainer.Run(Tiny(data, edges, outDir, 2)));
        Assert.Contains(first, e3.Message);
        Assert.Contains("not a ternary map", e3.Message);

        File.WriteAllBytes(first, good);
        var e4 = Assert.Throws<InvalidOptionException>(() => FineTuneTrainer.Run(Tiny(data, edges, outDir, 2) with { Rank = 40 }));
        Assert.Equal("Rank", e4.Option);
        Assert.Contains("attn", e4.Message);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void FineTuningStepsLeaveNoLiveTensorsBehind()
    {
        using var dataSet = FineTuneTestUtil.MakeSet(2, 16);
        var (data, edges) = dataSet;
        using var root = new TempDir("diffegg-ft-leak");
        FineTuneTrainer.Run(Tiny(data, edges, Path.Combine(root, "w"), 1));   // warm-up: lazily created native state
        long c0 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        FineTuneTrainer.Run(Tiny(data, edges, Path.Combine(root, "a"), 1));
        long c1 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        FineTuneTrainer.Run(Tiny(data, edges, Path.Combine(root, "b"), 5));
        long c2 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        _out.WriteLine($"live tensors left: 1-step run {c1 - c0}, 5-step run {c2 - c1}");
        Assert.Equal(c1 - c0, c2 - c1);
    }
}
