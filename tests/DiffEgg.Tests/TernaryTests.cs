using DiffEgg.Common;
using DiffEgg.Edges;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class TernaryTests
{
    public TernaryTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Classify_KnownMeanAndPopulationSigma()
    {
        // x = [−2, −1.2, 0, 0, 0, 0, 1.2, 2]: μ = 0, population σ = sqrt((4+1.44)·2/8) = sqrt(1.36) = 1.1662 < 1.2,
        // sample σ = sqrt(10.88/7) = 1.2467 > 1.2. Population σ (used) makes ±1.2 certain: 1.2 → edge, −1.2 → interior.
        using var e = tensor(new float[] { -2f, -1.2f, 0, 0, 0, 0, 1.2f, 2f }, new long[] { 2, 4 });
        using var t = TernaryEdges.Classify(e);
        Assert.Equal(ScalarType.Int8, t.dtype);
        Assert.Equal(new long[] { 2, 4 }, t.shape);
        Assert.Equal(new sbyte[] { 0, 0, -1, -1, -1, -1, 1, 1 }, t.data<sbyte>().ToArray());
    }

    [Fact]
    public void Normalize_MinMax()
    {
        using var e = tensor(new float[] { 2, 4, 6, 3 }, new long[] { 2, 2 });
        using var n = TernaryEdges.Normalize(e);
        Assert.Equal(new float[] { 0, 0.5f, 1, 0.25f }, n.data<float>().ToArray());
        using var c = full(new long[] { 2, 2 }, 3f);
        using var nc = TernaryEdges.Normalize(c);
        Assert.Equal(0f, nc.abs().max().item<float>());
    }

    [Fact]
    public void Png8_RoundTrip_ThreeGreyLevels()
    {
        using var t = tensor(new sbyte[] { 1, 0, -1, 1, -1, 0 }, new long[] { 2, 3 });
        var bytes = TernaryEdges.ToPng8(t);
        Assert.Equal(new byte[] { 255, 0, 128, 255, 128, 0 }, bytes);
        using var back = TernaryEdges.FromPng8(bytes, 2, 3);
        Assert.True(back.equal(t).all().item<bool>());

        string path = Path.Combine(Path.GetTempPath(), "diffegg-ternary-" + Guid.NewGuid().ToString("N") + ".png");
        try
        {
            TernaryEdges.WritePng(path, t);
            using var read = TernaryEdges.ReadPng(path);
            Assert.True(read.equal(t).all().item<bool>());
        }
        finally { File.Delete(path); }

        using var bad = tensor(new sbyte[] { 2, 0 }, new long[] { 1, 2 });
        var ex = Assert.Throws<ArgumentException>(() => TernaryEdges.ToPng8(bad));
        Assert.Contains("[1, 2]", ex.Message);
    }

    [Fact]
    public void Classify_Errors()
    {
        using var r3 = zeros(1, 2, 2);
        var ex = Assert.Throws<ArgumentException>(() => TernaryEdges.Classify(r3));
        Assert.Contains("edgeMap", ex.Message);
        Assert.Contains("[1, 2, 2]", ex.Message);
        using var nan = tensor(new float[] { 0, float.NaN }, new long[] { 1, 2 });
        ex = Assert.Throws<ArgumentException>(() => TernaryEdges.Classify(nan));
        Assert.Contains("NaN", ex.Message);
    }
}
