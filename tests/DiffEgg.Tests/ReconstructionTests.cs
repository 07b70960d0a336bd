using DiffEgg.Common;
using DiffEgg.FineTuning;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class ReconstructionTests
{
    public ReconstructionTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void PredictX0_RecoversX0_WithTrueNoise_PerBatchAlpha()
    {
        using var g = new Generator(5);
        using var x0 = randn(new long[] { 2, 4, 3, 3 }, generator: g, dtype: ScalarType.Float64);
        using var eps = randn(new long[] { 2, 4, 3, 3 }, generator: g, dtype: ScalarType.Float64);
        using var ab = tensor(new double[] { 0.9, 0.3 });
        using var xt = ab.sqrt().reshape(2, 1, 1, 1) * x0 + (1 - ab).sqrt().reshape(2, 1, 1, 1) * eps; // forward process, Eq 3
        using var rec = ReconstructionTarget.PredictX0(xt, eps, ab);
        Assert.True(rec.allclose(x0, rtol: 0, atol: 1e-12));

        using var xt1 = Math.Sqrt(0.5) * x0 + Math.Sqrt(0.5) * eps;
        using var rec1 = ReconstructionTarget.PredictX0(xt1, eps, 0.5);
        Assert.True(rec1.allclose(x0, rtol: 0, atol: 1e-12));
        // a wrong noise does not recover x0
        using var rec2 = ReconstructionTarget.PredictX0(xt1, zeros_like(eps), 0.5);
        Assert.False(rec2.allclose(x0, rtol: 0, atol: 1e-3));
    }

    [Fact]
    public void Errors()
    {
        using var x = zeros(2, 4, 3, 3);
        using var e = zeros(2, 4, 3, 2);
        var ex = Assert.Throws<ArgumentException>(() => ReconstructionTarget.PredictX0(x, e, 0.5));
        Assert.Contains("[2, 4, 3, 2]", ex.Message);
        Assert.Throws<ArgumentException>(() => ReconstructionTarget.PredictX0(x, x, 0.0));
        using var ab3 = tensor(new float[] { 0.5f, 0.5f, 0.5f });
        ex = Assert.Throws<ArgumentException>(() => ReconstructionTarget.PredictX0(x, x, ab3));
        Assert.Contains("alphaBar", ex.Message);
    }
}
