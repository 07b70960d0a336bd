using DiffEgg.Common;
using DiffEgg.FineTuning;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class DiceTests
{
    public DiceTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void HandValues()
    {
        // p = [0.5, 0.5, 0.9(uncertain)], y = [1, 0, −1], smooth 0: inter = 0.5, Σp = 1, Σy = 1 → dice 0.5, loss 0.5.
        using var p = tensor(new double[] { 0.5, 0.5, 0.9 }, new long[] { 1, 1, 3 });
        using var y = tensor(new sbyte[] { 1, 0, -1 }, new long[] { 1, 1, 3 });
        Assert.Equal(0.5, MaskedDice.Loss(p, y, 0).item<double>(), 12);
        // perfect prediction on the certain pixels (uncertain pixel arbitrary) → loss 0
        using var perfect = tensor(new double[] { 1, 0, 0.3 }, new long[] { 1, 1, 3 });
        Assert.Equal(0.0, MaskedDice.Loss(perfect, y, 0).item<double>(), 12);
        // smooth 1: (2·0.5+1)/(2+1) = 2/3 → 1/3; [B,1,H,W] layout
        using var p4 = p.reshape(1, 1, 1, 3);
        using var y4 = y.reshape(1, 1, 1, 3);
        Assert.Equal(1.0 / 3, MaskedDice.Loss(p4, y4, 1).item<double>(), 12);
    }

    [Fact]
    public void Gradient_MatchesFiniteDifferences_UncertainGetsZero()
    {
        using var g = new Generator(3);
        using var p0 = rand(new long[] { 2, 1, 3, 3 }, generator: g, dtype: ScalarType.Float64) * 0.8 + 0.1;
        using var y = tensor(new sbyte[] { 1, 0, -1, 1, 1, 0, -1, 0, 0, 0, 1, -1, -1, 1, 0, 0, 1, 1 }, new long[] { 2, 1, 3, 3 });
        using var p = p0.clone().requires_grad_(true);
        using var loss = MaskedDice.Loss(p, y);
        loss.backward();
        var grad = p.grad!.data<double>().ToArray();
        var yv = y.data<sbyte>().ToArray();
        var pv = p0.data<double>().ToArray();
        double h = 1e-6;
        for (int i = 0; i < pv.Length; i++)
        {
            var plus = (double[])pv.Clone(); plus[i] += h;
            var minus = (double[])pv.Clone(); minus[i] -= h;
            using var tp = tensor(plus, p0.shape);
            using var tm = tensor(minus, p0.shape);
            double fd = (MaskedDice.Loss(tp, y).item<double>() - MaskedDice.Loss(tm, y).item<double>()) / (2 * h);
            Assert.Equal(fd, grad[i], 8);
            if (yv[i] == -1) Assert.Equal(0.0, grad[i]);
            else Assert.NotEqual(0.0, grad[i]);
        }
    }

    [Fact]
    public void Errors()
    {
        using var p = full(new long[] { 1, 2, 2 }, 0.5);
        using var y3 = zeros(new long[] { 1, 2, 3 }, ScalarType.Int8);
        var ex = Assert.Throws<ArgumentException>(() => MaskedDice.Loss(p, y3));
        Assert.Contains("[1, 2, 3]", ex.Message);
        using var y2 = full(new long[] { 1, 2, 2 }, 2, ScalarType.Int8);
        ex = Assert.Throws<ArgumentException>(() => MaskedDice.Loss(p, y2));
        Assert.Contains("ternaryTarget", ex.Message);
        using var big = full(new long[] { 1, 2, 2 }, 1.5);
        using var y = zeros(new long[] { 1, 2, 2 }, ScalarType.Int8);
        ex = Assert.Throws<ArgumentException>(() => MaskedDice.Loss(big, y));
        Assert.Contains("prediction", ex.Message);
        using var r2 = full(new long[] { 2, 2 }, 0.5);
        ex = Assert.Throws<ArgumentException>(() => MaskedDice.Loss(r2, y));
        Assert.Contains("[2, 2]", ex.Message);
    }
}
