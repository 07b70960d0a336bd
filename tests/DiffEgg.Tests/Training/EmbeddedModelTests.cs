using DiffEgg.Data.Synthetic;
using DiffEgg.Edges;
using DiffEgg.Evaluation;
using DiffEgg.Models;
using TorchSharp;

namespace DiffEgg.Tests.Training;

[Collection("TorchThreads")]
public class EmbeddedModelTests
{
    static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "DiffEgg.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no DiffEgg.sln above {AppContext.BaseDirectory}");
    }

    [Fact]
    public void ShippedWeightsLoadAndGiveFiniteOutputAt64()
    {
        string dir = Path.Combine(RepoRoot(), "models", "embedded");
        using var f = DiffusionModelFolder.Load(dir);
        Assert.True(f.IsPixelSpace);
        Assert.Null(f.TextEncoder);
        Assert.Equal(3, f.Unet.Config.InChannels);
        long bytes = new DirectoryInfo(dir).EnumerateFiles("*.safetensors", SearchOption.AllDirectories).Sum(x => x.Length);
        Assert.InRange(bytes, 1_000_000, 15_000_000);
        using var g = new torch.Generator(0);
        using var x = torch.randn(new long[] { 1, 3, 64, 64 }, generator: g);
        using var _ = torch.no_grad();
        using var c = f.EncodeEmptyPrompt();
        using var y = f.Unet.forward(x, torch.tensor(new long[] { 10 }), c);
        Assert.Equal(new long[] { 1, 3, 64, 64 }, y.shape);
        Assert.True(y.isfinite().all().item<bool>());
        // the trained ε-predictor is not the zero map: its output correlates with the noise actually added at t = 500
        using var x0 = torch.zeros(1, 3, 64, 64);
        using var eps = torch.randn(new long[] { 1, 3, 64, 64 }, generator: g);
        using var xt = f.Scheduler.AddNoise(x0, eps, 500);
        using var pred = f.Unet.forward(xt, torch.tensor(new long[] { 500 }), c);
        double corr = (pred * eps).mean().item<float>() / Math.Sqrt((pred * pred).mean().item<float>() * (eps * eps).mean().item<float>());
        Assert.True(corr > 0.5, $"correlation of predicted and true noise {corr}");
    }

    [Fact]
    public void DefaultPathFindsTheEmbeddedModel()
    {
        string? p = EmbeddedModel.FindDefaultPath();
        Assert.NotNull(p);
        Assert.True(File.Exists(Path.Combine(p!, "unet", "config.json")));
        Assert.True(File.Exists(Path.Combine(p!, PixelModelFolder.NullEmbeddingFile)));
    }

    /// <summary>
    /// The shipped weights' edge quality on fixed scenes: the first 8 scenes of the synthetic test split (seed 0), the default DiffEGG row
    /// (default timesteps, KL, default ternary rule `log-interior`, whose edge class is the paper's μ+σ), scored exactly as `diffegg bench-edges`
    /// does. The reference is the model card's "fixed-scene check" figure (models/embedded/MODEL_CARD.md); the margin absorbs libtorch/CPU
    /// floating-point differences that move a few threshold pixels.
    /// </summary>
    public const double FixedScenesF1 = 0.985, FixedScenesMargin = 0.02;

    [Fact]
    public void ShippedWeightsGiveTheModelCardsEdgeF1OnFixedScenes()
    {
        using var data = new TempDir("diffegg-fixed");
        try
        {
            var summary = SyntheticDatasetWriter.Write(data, new SceneOptions { Size = 64 }, 0, SyntheticSplit.Test, 0, 8);
            Assert.Empty(summary.Failed);
            using var model = DiffusionModelFolder.Load(Path.Combine(RepoRoot(), "models", "embedded"));
            var report = EdgeBenchmark.RunDiffEgg(model, EdgeBenchmark.Load(data), new EdgeBenchmarkOptions
            {
                FixedTimesteps = Array.Empty<int>(), Metrics = new[] { EdgeMetric.KL }, Sobel = Array.Empty<SobelVariant>(),
            });
            Assert.Empty(report.Failed);
            var row = Assert.Single(report.Rows);
            Assert.True(row.PeakKL);
            Assert.True(Math.Abs(row.Summary.F1 - FixedScenesF1) <= FixedScenesMargin,
                $"edge F1 on the 8 fixed scenes is {row.Summary.F1:F4}; the model card says {FixedScenesF1:F4} ± {FixedScenesMargin}");
        }
        finally { Directory.Delete(data, true); }
    }
}
