using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning;

/// <summary>One-step reconstruction of the clean sample (DiffEGG Eq 3-4): x̂₀ = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t.</summary>
public static class ReconstructionTarget
{
    /// <summary>Eq 3-4 with one ᾱ_t ∈ (0, 1] for the whole batch.</summary>
    public static Tensor PredictX0(Tensor noisySample, Tensor noisePrediction, double alphaBar)
    {
        if (!(alphaBar > 0 && alphaBar <= 1))
            throw new ArgumentException($"alphaBar = {alphaBar}: must lie in (0, 1]", nameof(alphaBar));
        CheckPair(noisySample, noisePrediction);
        using var scope = NewDisposeScope();
        var x0 = (noisySample - Math.Sqrt(1 - alphaBar) * noisePrediction) / Math.Sqrt(alphaBar);
        return x0.MoveToOuterDisposeScope();
    }

    /// <summary>Eq 3-4 with ᾱ_t as a scalar tensor or one value per batch element (<c>[B]</c>, or any shape broadcastable to x_t).</summary>
    public static Tensor PredictX0(Tensor noisySample, Tensor noisePrediction, Tensor alphaBar)
    {
        ArgumentNullException.ThrowIfNull(alphaBar);
        CheckPair(noisySample, noisePrediction);
        using var scope = NewDisposeScope();
        var a = alphaBar.to(noisySample.dtype, noisySample.device);
        if (a.dim() == 1 && noisySample.dim() >= 1 && a.shape[0] == noisySample.shape[0] && noisySample.dim() > 1)
        {
            var shape = new long[noisySample.dim()];
            Array.Fill(shape, 1L);
            shape[0] = a.shape[0];
            a = a.reshape(shape);
        }
        else if (a.dim() > 0)
        {
            try { broadcast_shapes(a.shape, noisySample.shape); }
            catch (Exception)
            {
                throw new ArgumentException(
                    $"alphaBar {TensorChecks.Shape(alphaBar)}: expected a scalar, [B] with B = {noisySample.shape[0]}, or a shape broadcastable to noisySample {TensorChecks.Shape(noisySample)}", nameof(alphaBar));
            }
        }
        using (no_grad())
        {
            var ad = a.detach().to_type(ScalarType.Float64);
            bool ok = ad.gt(0).logical_and(ad.le(1)).all().item<bool>();
            if (!ok) throw new ArgumentException($"alphaBar {TensorChecks.Shape(alphaBar)}: every value must lie in (0, 1]", nameof(alphaBar));
        }
        var x0 = (noisySample - (1 - a).sqrt() * noisePrediction) / a.sqrt();
        return x0.MoveToOuterDisposeScope();
    }

    static void CheckPair(Tensor x, Tensor eps)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(eps);
        TensorChecks.RequireFloat(x, "noisySample");
        TensorChecks.RequireFloat(eps, "noisePrediction");
        if (!x.shape.SequenceEqual(eps.shape))
            throw new ArgumentException($"noisePrediction {TensorChecks.Shape(eps)}: shape differs from noisySample {TensorChecks.Shape(x)}", "noisePrediction");
    }
}
