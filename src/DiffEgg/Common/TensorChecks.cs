using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Common;

/// <summary>Cheap argument checks for tensors: each failure is an <see cref="ArgumentException"/> naming the tensor and its shape.</summary>
internal static class TensorChecks
{
    /// <summary>Formats a shape as <c>[a, b, c]</c>.</summary>
    public static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    /// <summary>Throws unless <paramref name="t"/> is a floating-point tensor.</summary>
    public static void RequireFloat(Tensor t, string name)
    {
        if (!t.is_floating_point())
            throw new ArgumentException($"{name} {Shape(t)}: expected a floating-point tensor, got {t.dtype}", name);
    }

    /// <summary>Throws when <paramref name="t"/> holds NaN or ±Inf (one reduction).</summary>
    public static void RequireFinite(Tensor t, string name)
    {
        using var scope = NewDisposeScope();
        if (!t.isfinite().all().item<bool>())
            throw new ArgumentException($"{name} {Shape(t)}: contains NaN or infinite values", name);
    }

    /// <summary>
    /// Throws unless every row (last dimension) of <paramref name="t"/> is a probability distribution:
    /// no NaN/Inf, no entry below −<paramref name="tol"/>, each row summing to 1 within <paramref name="tol"/>.
    /// Two reductions over the tensor and no full-size temporaries beyond the row sums.
    /// </summary>
    public static void RequireRowDistributions(Tensor t, string name, double tol = 1e-3)
    {
        using var scope = NewDisposeScope();
        RequireFloat(t, name);
        var rowSum = t.sum(-1, type: ScalarType.Float64);
        double maxDev = (rowSum - 1.0).abs().max().item<double>();
        if (double.IsNaN(maxDev) || double.IsInfinity(maxDev))
            throw new ArgumentException($"{name} {Shape(t)}: contains NaN or infinite values", name);
        if (maxDev > tol)
        {
            long bad = (rowSum - 1.0).abs().argmax().item<long>();
            double s = rowSum.flatten()[bad].item<double>();
            throw new ArgumentException(
                $"{name} {Shape(t)}: rows must be probability distributions summing to 1 (row {bad} sums to {s:G6}, tolerance {tol:G3})", name);
        }
        double min = t.min().to_type(ScalarType.Float64).item<double>();
        if (min < -tol)
            throw new ArgumentException($"{name} {Shape(t)}: has negative entries (min {min:G6}); expected probabilities", name);
    }
}
