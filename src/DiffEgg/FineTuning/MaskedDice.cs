using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning;

/// <summary>
/// Masked Dice loss on ternary edge targets (DiffEGG Eq 7-8). With m = [y ≠ −1] (uncertain pixels weigh 0) and
/// g = [y = 1], per image: L = 1 − (2·Σ m·p·g + s) / (Σ m·p + Σ m·g + s); the loss is the mean over the batch.
/// </summary>
public static class MaskedDice
{
    /// <summary>Eq 7-8: masked Dice loss of <paramref name="prediction"/> (<c>[B,1,H,W]</c> or <c>[B,H,W]</c>, values in [0,1]) against ternary targets (1/0/−1, same B,H,W); differentiable scalar.</summary>
    public static Tensor Loss(Tensor prediction, Tensor ternaryTarget, double smooth = 1.0)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(ternaryTarget);
        var p3 = Spatial(prediction, nameof(prediction));
        var t3 = Spatial(ternaryTarget, nameof(ternaryTarget));
        if (!p3.SequenceEqual(t3))
            throw new ArgumentException(
                $"ternaryTarget {TensorChecks.Shape(ternaryTarget)}: batch/spatial size differs from prediction {TensorChecks.Shape(prediction)}", nameof(ternaryTarget));
        TensorChecks.RequireFloat(prediction, nameof(prediction));
        if (!(smooth >= 0)) throw new ArgumentException($"smooth = {smooth} must be ≥ 0", nameof(smooth));

        using var scope = NewDisposeScope();
        using (no_grad())
        {
            var pd = prediction.detach();
            double min = pd.min().to_type(ScalarType.Float64).item<double>();
            double max = pd.max().to_type(ScalarType.Float64).item<double>();
            if (double.IsNaN(min) || double.IsNaN(max) || min < 0 || max > 1)
                throw new ArgumentException($"prediction {TensorChecks.Shape(prediction)}: values must lie in [0, 1] (found min {min:G4}, max {max:G4})", nameof(prediction));
            var tv = ternaryTarget.to_type(ScalarType.Float32);
            bool valid = tv.eq(1).logical_or(tv.eq(0)).logical_or(tv.eq(-1)).all().item<bool>();
            if (!valid)
                throw new ArgumentException($"ternaryTarget {TensorChecks.Shape(ternaryTarget)}: values must be 1 (edge), 0 (interior) or −1 (uncertain)", nameof(ternaryTarget));
        }
        long b = p3[0];
        var p = prediction.reshape(b, -1);
        var t = ternaryTarget.reshape(b, -1).to(prediction.dtype, prediction.device);
        var mask = t.ne(-1).to_type(prediction.dtype);
        var g = t.eq(1).to_type(prediction.dtype);
        var mp = p * mask;
        var inter = (mp * g).sum(1);
        var denom = mp.sum(1) + (mask * g).sum(1);
        var dice = (2.0 * inter + smooth) / (denom + smooth);
        return (1.0 - dice).mean().MoveToOuterDisposeScope();
    }

    static long[] Spatial(Tensor t, string name)
    {
        if (t.dim() == 4 && t.shape[1] == 1) return new[] { t.shape[0], t.shape[2], t.shape[3] };
        if (t.dim() == 3) return new[] { t.shape[0], t.shape[1], t.shape[2] };
        throw new ArgumentException($"{name} {TensorChecks.Shape(t)}: expected [B, 1, H, W] or [B, H, W]", name);
    }
}
