using BenchmarkDotNet.Attributes;
using DiffEgg.Attention;
using DiffEgg.Common;
using DiffEgg.Edges;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Bench;

/// <summary>
/// EdgeKL (Eq 6) and self-attention accumulation (Eq 11-12) at SD 1.5's attention resolutions:
/// latent side R = 32 (256² images) or 64 (512² images). Accumulation uses SD 1.5's 16 attn1 layers
/// (5 at R, 5 at R/2, 5 at R/4, 1 at R/8), 8 heads, batch 1.
/// </summary>
[MemoryDiagnoser(false)]
public class EdgesBenchmarks
{
    [Params(32, 64)]
    public int R;

    Tensor _map = null!;
    readonly List<(string, Tensor, int, int, int)> _layers = new();

    /// <summary>SD 1.5 attn1 layer count per resolution divisor.</summary>
    public static readonly (int div, int count)[] Sd15Layers = { (1, 5), (2, 5), (4, 5), (8, 1) };

    [GlobalSetup]
    public void Setup()
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(0);
        long hw = (long)R * R;
        using (var g = randn(hw, hw)) _map = g.softmax(-1);
        foreach (var (div, _) in Sd15Layers)
        {
            int r = R / div;
            using var g = randn(8, (long)r * r, (long)r * r);
            _layers.Add(($"res{r}", g.softmax(-1), 8, r, r));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _map.Dispose();
        foreach (var l in _layers) l.Item2.Dispose();
        _layers.Clear();
    }

    [Benchmark]
    public float EdgeKL_KL()
    {
        using var e = EdgeKL.Compute(_map, R, R, EdgeMetric.KL);
        return e[0, 0].item<float>();
    }

    /// <summary>Wall seconds of the 16 Add calls and of Result (for the docs' breakdown).</summary>
    public (double add, double result) AccumulateSplitTimes()
    {
        using var acc = new AttentionAccumulator();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        foreach (var (div, count) in Sd15Layers)
        {
            var l = _layers.First(x => x.Item4 == R / div);
            for (int i = 0; i < count; i++) acc.Add($"{l.Item1}.{i}", l.Item2, l.Item3, l.Item4, l.Item5);
        }
        double add = sw.Elapsed.TotalSeconds;
        sw.Restart();
        using var r = acc.Result();
        return (add, sw.Elapsed.TotalSeconds);
    }

    [Benchmark]
    public float Accumulate_SD15_16Layers()
    {
        using var acc = new AttentionAccumulator();
        foreach (var (div, count) in Sd15Layers)
        {
            var l = _layers.First(x => x.Item4 == R / div);
            for (int i = 0; i < count; i++) acc.Add($"{l.Item1}.{i}", l.Item2, l.Item3, l.Item4, l.Item5);
        }
        using var r = acc.Result();
        return r[0, 0, 0].item<float>();
    }
}
