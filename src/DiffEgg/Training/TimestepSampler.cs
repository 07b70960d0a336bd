using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Training;

/// <summary>
/// Training timestep distribution: a mixture of U{0..T−1} (weight 1 − b) and U{0..L−1} (weight b), b = <c>--low-t-bias</c>, L = <c>--low-t-max</c>.
/// P(t) = (1 − b)/T + b/L for t &lt; L and (1 − b)/T otherwise. DiffEGG reads attention at low-noise timesteps (PeakKL chose t ≈ 10), so b &gt; 0
/// spends more of the training on them while still covering the whole chain.
/// </summary>
public sealed class TimestepSampler
{
    public int NumTrainTimesteps { get; }
    public double LowBias { get; }
    public int LowMax { get; }

    public TimestepSampler(int numTrainTimesteps, double lowBias, int lowMax)
    {
        if (numTrainTimesteps < 2) throw new ArgumentException($"numTrainTimesteps must be ≥ 2, got {numTrainTimesteps}");
        if (lowBias is < 0 or > 1 || double.IsNaN(lowBias)) throw new ArgumentException($"lowBias must lie in [0, 1], got {lowBias}");
        if (lowMax < 1 || lowMax > numTrainTimesteps) throw new ArgumentException($"lowMax must lie in [1, {numTrainTimesteps}], got {lowMax}");
        NumTrainTimesteps = numTrainTimesteps; LowBias = lowBias; LowMax = lowMax;
    }

    /// <summary>Probability of timestep <paramref name="t"/> under the mixture.</summary>
    public double Probability(int t) => (t < 0 || t >= NumTrainTimesteps) ? 0 : (1 - LowBias) / NumTrainTimesteps + (t < LowMax ? LowBias / LowMax : 0);

    /// <summary>Draws <paramref name="count"/> int64 timesteps from the mixture using <paramref name="generator"/>.</summary>
    public Tensor Sample(int count, Generator generator)
    {
        using var scope = torch.NewDisposeScope();
        var full = torch.randint(NumTrainTimesteps, new long[] { count }, dtype: ScalarType.Int64, generator: generator);
        var low = torch.randint(LowMax, new long[] { count }, dtype: ScalarType.Int64, generator: generator);
        var pick = torch.rand(new long[] { count }, generator: generator) < LowBias;
        return torch.where(pick, low, full).MoveToOuterDisposeScope();
    }
}
