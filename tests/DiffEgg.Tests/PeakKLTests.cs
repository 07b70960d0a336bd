using DiffEgg.Common;
using DiffEgg.Edges;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class PeakKLTests
{
    public PeakKLTests() => TorchRuntime.EnsureLoaded();

    static Tensor Sym(double a) => tensor(new double[] { a, 1 - a, 1 - a, a }, new long[] { 2, 2 });

    [Fact]
    public void Curve_MatchesHandComputation_AndFindsPlantedJump()
    {
        // rows [a, 1−a] and [1−a, a]: both rows have the same KL, so the pixel mean equals one row's KL.
        var maps = new[] { Sym(0.5), Sym(0.6), Sym(0.9), Sym(0.92) };
        int[] ts = { 901, 801, 701, 601 };
        using var peak = new PeakKL { Eps = 0 };
        for (int i = 0; i < 4; i++) peak.Add(ts[i], maps[i]);
        using var r = peak.Result();
        double k1 = 0.6 * Math.Log(0.6 / 0.5) + 0.4 * Math.Log(0.4 / 0.5);
        double k2 = 0.9 * Math.Log(0.9 / 0.6) + 0.1 * Math.Log(0.1 / 0.4);
        double k3 = 0.92 * Math.Log(0.92 / 0.9) + 0.08 * Math.Log(0.08 / 0.1);
        Assert.True(double.IsNaN(r.Curve[0]));
        Assert.Equal(k1, r.Curve[1], 6);
        Assert.Equal(k2, r.Curve[2], 6);
        Assert.Equal(k3, r.Curve[3], 6);
        Assert.Equal(2, r.PeakIndex);
        Assert.Equal(701, r.PeakTimestep);
        Assert.Equal(ts, r.Timesteps);
        using var expected = maps[2].to_type(ScalarType.Float32);
        Assert.True(r.PeakMap.allclose(expected)); // SA_n of the peak pair (the later map), not SA_{n−1}
        foreach (var m in maps) m.Dispose();
    }

    [Fact]
    public void PlantedJump_InRandomMaps_StreamingEqualsStatic()
    {
        const int hw = 16;
        var ts = new List<int>();
        var maps = new List<Tensor>();
        using var g = new Generator(11);
        using var baseA = randn(new long[] { 1, hw, hw }, generator: g);
        using var baseB = randn(new long[] { 1, hw, hw }, generator: g) * 3;
        for (int n = 0; n < 8; n++)
        {
            ts.Add(1000 - 100 * n);
            using var noise = randn(new long[] { 1, hw, hw }, generator: g) * 0.05;
            // before step 5: structure A; from step 5 on: structure B (a jump planted between n=4 and n=5)
            maps.Add(((n < 5 ? baseA : baseB) + noise).softmax(-1));
        }
        using var s = PeakKL.Select(ts, maps);
        Assert.Equal(5, s.PeakIndex);
        Assert.Equal(500, s.PeakTimestep);
        Assert.Equal(8, s.Curve.Length);
        for (int n = 1; n < 8; n++) if (n != 5) Assert.True(s.Curve[n] < s.Curve[5] / 5);

        using var peak = new PeakKL();
        for (int i = 0; i < maps.Count; i++) peak.Add(ts[i], maps[i]);
        using var r = peak.Result();
        Assert.Equal(s.Curve.Skip(1), r.Curve.Skip(1));
        Assert.Equal(s.PeakIndex, r.PeakIndex);
        Assert.True(r.PeakMap.equal(s.PeakMap).all().item<bool>());
        Assert.Equal(new long[] { hw, hw }, r.PeakMap.shape);
        using var expect = maps[5][0];
        Assert.True(r.PeakMap.allclose(expect));
        foreach (var m in maps) m.Dispose();
    }

    [Fact]
    public void SingleMap_PeakIsThatMap()
    {
        using var m = Sym(0.7);
        using var r = PeakKL.Select(new[] { 10 }, new[] { m });
        Assert.Equal(0, r.PeakIndex);
        Assert.Single(r.Curve);
    }

    [Fact]
    public void Errors()
    {
        using var peak = new PeakKL();
        using var m = Sym(0.7);
        peak.Add(500, m);
        var ex = Assert.Throws<ArgumentException>(() => peak.Add(600, m)); // not decreasing
        Assert.Contains("timestep", ex.Message);
        using var other = ones(3, 3) / 3;
        ex = Assert.Throws<ArgumentException>(() => peak.Add(400, other));
        Assert.Contains("[3, 3]", ex.Message);
        using var rank1 = ones(4) / 4;
        ex = Assert.Throws<ArgumentException>(() => peak.Add(400, rank1));
        Assert.Contains("[4]", ex.Message);
        using var nn = ones(2, 2);
        ex = Assert.Throws<ArgumentException>(() => peak.Add(400, nn));
        Assert.Contains("sum", ex.Message);
        Assert.Equal(1, peak.Count);
        Assert.Throws<ArgumentException>(() => PeakKL.Select(new[] { 1, 2 }, new[] { m }));
    }
}
