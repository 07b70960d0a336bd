using BenchmarkDotNet.Attributes;
using DiffEgg.Data.Synthetic;
using DiffEgg.Edges;
using DiffEgg.Evaluation;

namespace DiffEgg.Bench;

/// <summary>Speed of one 64×64 synthetic scene, a Sobel map of it, and its edge-quality scoring at 32×32.</summary>
[MemoryDiagnoser]
public class SyntheticBenchmarks
{
    readonly SceneGenerator _gen = new();
    Scene _scene = null!;
    float[] _sobel32 = null!;
    (int, int)[] _pairs = null!;

    [GlobalSetup]
    public void Setup()
    {
        _scene = _gen.Generate(0, SyntheticSplit.Test, 2);
        _sobel32 = EdgeQuality.ResampleBilinear(SobelEdges.Compute(_scene.Image, 1.5), 64, 64, 32, 32);
        _pairs = _scene.HardPairs.Select(p => (p.SegmentIdA, p.SegmentIdB)).ToArray();
    }

    [Benchmark] public Scene GenerateScene64() => _gen.Generate(0, SyntheticSplit.Test, 2);

    [Benchmark] public float[] SobelBlur64() => SobelEdges.Compute(_scene.Image, 1.5);

    [Benchmark] public EdgeScores ScoreEdges32() => EdgeQuality.Score(_sobel32, 32, 32, _scene.SegmentMap, 64, 64, _pairs);
}
