using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using DiffEgg.Attention;
using DiffEgg.Common;
using DiffEgg.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Bench;

/// <summary>Sink that only touches each map (measures the cost of the explicit softmax path alone).</summary>
public sealed class NullSink : IAttentionSink
{
    public int Calls;
    public void Add(string layerName, Tensor probs, int heads, int height, int width) => Calls++;
}

/// <summary>
/// UNet forward, capture off (SDPA) vs on (explicit softmax → sink): the sd15-tiny fixture at a 16×16 latent, and an
/// SD-1.5-structured UNet at 1/4 of SD 1.5's widths (80,160,320,320; 8 heads; cross_attention_dim 768 as SD 1.5;
/// norm_num_groups 16 because 32 does not divide 80) with random weights at a 64×64 latent (a 512² image).
/// </summary>
[Config(typeof(UNetBenchmarks.ShortInProcess))]
public class UNetBenchmarks
{
    public enum CaptureMode { Off, NullSink, Accumulator }

    /// <summary>One in-process job, 1 warm-up + 3 measured forward passes (a UNet forward is long enough for the Monitoring strategy).</summary>
    public sealed class ShortInProcess : BenchmarkDotNet.Configs.ManualConfig
    {
        public ShortInProcess() => AddJob(Job.Default.WithStrategy(RunStrategy.Monitoring).WithLaunchCount(1).WithWarmupCount(1)
            .WithIterationCount(3).WithToolchain(BenchmarkDotNet.Toolchains.InProcess.Emit.InProcessEmitToolchain.Instance));
    }

    /// <summary>Models to run: env DIFFEGG_BENCH_MODELS (comma-separated), default both.</summary>
    public static IEnumerable<string> Models() =>
        (Environment.GetEnvironmentVariable("DIFFEGG_BENCH_MODELS") ?? "fixture16,quarter64").Split(',', StringSplitOptions.RemoveEmptyEntries);

    [ParamsSource(nameof(Models))]
    public string Model = "fixture16";

    [Params(CaptureMode.Off, CaptureMode.NullSink, CaptureMode.Accumulator)]
    public CaptureMode Capture;

    UNet2DConditionModel _unet = null!;
    Tensor _sample = null!, _t = null!, _ehs = null!;

    /// <summary>SD 1.5's UNet config at 1/4 width (see class summary).</summary>
    public static UNet2DConditionConfig QuarterConfig => UNet2DConditionConfig.StableDiffusion15 with
    {
        BlockOutChannels = new[] { 80, 160, 320, 320 },
        NormNumGroups = 16,
    };

    public static string FixtureUNet()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "shared", "fixtures", "sd15-tiny"))) dir = dir.Parent;
        if (dir is null) throw new DirectoryNotFoundException("shared/fixtures/sd15-tiny not found above " + AppContext.BaseDirectory);
        return Path.Combine(dir.FullName, "shared", "fixtures", "sd15-tiny", "unet");
    }

    [GlobalSetup]
    public void Setup()
    {
        TorchRuntime.EnsureLoaded();
        // One intra-op thread: on the shared 2-core VM, OpenMP spinning of 2 threads under a load of ~20 made timings 10× worse and erratic.
        set_num_threads(int.TryParse(Environment.GetEnvironmentVariable("DIFFEGG_BENCH_THREADS"), out int th) ? th : 1);
        manual_seed(0);
        if (Model == "fixture16")
        {
            _unet = UNet2DConditionModel.FromFolder(FixtureUNet());
            _sample = randn(1, 4, 16, 16);
        }
        else
        {
            _unet = new UNet2DConditionModel(QuarterConfig);
            _unet.eval();
            _sample = randn(1, 4, 64, 64);
        }
        _t = tensor(new long[] { 500 });
        _ehs = randn(1, 77, _unet.Config.CrossAttentionDim);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _unet.Dispose(); _sample.Dispose(); _t.Dispose(); _ehs.Dispose();
    }

    [Benchmark]
    public float Forward()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        switch (Capture)
        {
            case CaptureMode.Off:
                return _unet.forward(_sample, _t, _ehs)[0, 0, 0, 0].item<float>();
            case CaptureMode.NullSink:
                return _unet.forward(_sample, _t, _ehs, new NullSink())[0, 0, 0, 0].item<float>();
            default:
            {
                using var acc = new AttentionAccumulator();
                var y = _unet.forward(_sample, _t, _ehs, acc);
                using var r = acc.Result();
                return y[0, 0, 0, 0].item<float>() + r[0, 0, 0].item<float>();
            }
        }
    }
}
