using TorchSharp;
using Xunit.Abstractions;

namespace DiffEgg.Tests;

/// <summary>
/// TorchSharp 0.107's <c>baddbmm</c> against its definition (β·input + α·batch1@batch2). The attention code does not use it (it
/// folds the scale into q); this records why: both the static <c>torch.baddbmm(input, batch1, batch2)</c> and the instance method
/// <c>input.baddbmm(batch1, batch2)</c> hand the operands to libtorch in another order (shapes that are valid by the definition are
/// refused; bmm + the scale folded into q computes the definition).
/// </summary>
public class TorchSmokeBaddbmmTests(ITestOutputHelper output)
{
    [Fact]
    public void BaddbmmMisordersItsOperandsWhileBmmWithAFoldedScaleMatchesTheDefinition()
    {
        using var g = new torch.Generator(1);
        using var input = torch.randn(new long[] { 2, 3, 5 }, generator: g);
        using var b1 = torch.randn(new long[] { 2, 3, 4 }, generator: g);
        using var b2 = torch.randn(new long[] { 2, 4, 5 }, generator: g);
        using var expected = input * 0.5 + b1.bmm(b2) * 0.25;
        using var r = input * 0.5 + (b1 * 0.25).bmm(b2);   // what Attention does: the scale folded into the first operand
        double d = (r - expected).abs().max().item<float>();
        output.WriteLine($"bmm with the scale folded in: max |Δ| vs definition = {d:E2}");
        Assert.True(d < 1e-6, $"{d}");
        var e1 = Assert.ThrowsAny<Exception>(() => torch.baddbmm(input, b1, b2, beta: 0.5f, alpha: 0.25f).Dispose());
        var e2 = Assert.ThrowsAny<Exception>(() => input.baddbmm(b1, b2, beta: 0.5f, alpha: 0.25f).Dispose());
        output.WriteLine($"torch.baddbmm(input, b1, b2): {e1.Message.Split('\n')[0]}");
        Assert.Contains("must match the existing size", e1.Message);
        Assert.Contains("must match the existing size", e2.Message);
    }
}
