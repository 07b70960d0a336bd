using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Edges;

/// <summary>Outcome of PeakKL (Alg 1): the KL curve over the denoising steps and the self-attention map at its peak.</summary>
public sealed class PeakKLResult : IDisposable
{
    /// <summary>The timesteps τ₁ &gt; … &gt; τ_N in the order added.</summary>
    public required int[] Timesteps { get; init; }

    /// <summary>Curve[n] = mean over pixels of KL(SA_n ‖ SA_{n−1}) for n ≥ 1; Curve[0] = NaN (no predecessor).</summary>
    public required double[] Curve { get; init; }

    /// <summary>n* = argmax_{n≥1} Curve[n] (first index on ties); 0 when only one map was given.</summary>
    public required int PeakIndex { get; init; }

    /// <summary>τ_{n*}.</summary>
    public int PeakTimestep => Timesteps[PeakIndex];

    /// <summary>SA_{n*} <c>[H·W, H·W]</c>: the map of the step at which the KL from its predecessor peaks (owned by this result).</summary>
    public required Tensor PeakMap { get; init; }

    /// <summary>Disposes <see cref="PeakMap"/>.</summary>
    public void Dispose() => PeakMap.Dispose();
}

/// <summary>
/// PeakKL (DiffEGG Alg 1): over the accumulated self-attention maps SA_1 … SA_N at timesteps τ₁ &gt; … &gt; τ_N, the
/// curve KL_n = (1/HW) Σ_pixels KL(SA_n[pixel] ‖ SA_{n−1}[pixel]) (row-wise, ε as in <see cref="EdgeKL"/>), its argmax n*
/// and the map SA_{n*} — the later (less noisy) map of the pair with the largest change, i.e. the step at which the
/// structure has just emerged. Streaming: only the previous map, the best map and the incoming copy are held (O(3 maps)).
/// </summary>
public sealed class PeakKL : IDisposable
{
    readonly List<int> _timesteps = new();
    readonly List<double> _curve = new();
    Tensor? _prev;
    Tensor? _best;
    int _bestIndex;
    double _bestKl = double.NegativeInfinity;
    long _hw = -1;
    bool _disposed;

    /// <summary>ε inside the logarithms (default 1e-8, as <see cref="EdgeKL"/>).</summary>
    public double Eps { get; init; } = 1e-8;

    /// <summary>Number of maps added.</summary>
    public int Count => _timesteps.Count;

    /// <summary>Adds SA_n (<c>[H·W, H·W]</c> or <c>[1, H·W, H·W]</c>) at timestep τ_n (strictly below the previous one) and computes KL_n (Alg 1, loop body). The map is copied.</summary>
    public void Add(int timestep, Tensor map)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(map);
        string name = $"map at timestep {timestep}";
        bool ok = (map.dim() == 2 && map.shape[0] == map.shape[1]) || (map.dim() == 3 && map.shape[0] == 1 && map.shape[1] == map.shape[2]);
        if (!ok) throw new ArgumentException($"{name} {TensorChecks.Shape(map)}: expected [H·W, H·W] or [1, H·W, H·W]", nameof(map));
        long hw = map.shape[^1];
        if (_hw >= 0 && hw != _hw)
            throw new ArgumentException($"{name} {TensorChecks.Shape(map)}: H·W = {hw} differs from {_hw} of the earlier maps", nameof(map));
        if (_timesteps.Count > 0 && timestep >= _timesteps[^1])
            throw new ArgumentException($"{name} {TensorChecks.Shape(map)}: timesteps must strictly decrease (τ₁ > … > τ_N), previous was {_timesteps[^1]}", nameof(timestep));
        TensorChecks.RequireRowDistributions(map, name);

        Tensor cur;
        using (NewDisposeScope())
            cur = map.reshape(hw, hw).to_type(ScalarType.Float32, copy: true).DetachFromDisposeScope();

        double kl = double.NaN;
        if (_prev is not null)
        {
            kl = EdgeKL.MeanRowDivergence(cur, _prev, EdgeMetric.KL, Eps);
        }
        _hw = hw;
        _timesteps.Add(timestep);
        _curve.Add(kl);
        int n = _timesteps.Count - 1;

        bool newBest = n == 0 || (!double.IsNaN(kl) && (n == 1 || kl > _bestKl));
        if (newBest)
        {
            if (_best is not null && !ReferenceEquals(_best, _prev)) _best.Dispose();
            _best = cur;
            _bestIndex = n;
            _bestKl = n == 0 ? double.NegativeInfinity : kl;
        }
        if (_prev is not null && !ReferenceEquals(_prev, _best)) _prev.Dispose();
        _prev = cur;
    }

    /// <summary>The curve, n* and a copy of SA_{n*} (Alg 1 output).</summary>
    public PeakKLResult Result()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_best is null) throw new InvalidOperationException("PeakKL.Result: no map was added");
        return new PeakKLResult
        {
            Timesteps = _timesteps.ToArray(),
            Curve = _curve.ToArray(),
            PeakIndex = _bestIndex,
            PeakMap = _best.clone(),
        };
    }

    /// <summary>Alg 1 over all maps at once (same result as streaming <see cref="Add"/>).</summary>
    public static PeakKLResult Select(IReadOnlyList<int> timesteps, IReadOnlyList<Tensor> maps, double eps = 1e-8)
    {
        if (timesteps.Count != maps.Count)
            throw new ArgumentException($"timesteps has {timesteps.Count} entries but maps has {maps.Count}", nameof(maps));
        using var peak = new PeakKL { Eps = eps };
        for (int i = 0; i < maps.Count; i++) peak.Add(timesteps[i], maps[i]);
        return peak.Result();
    }

    /// <summary>Releases the held maps.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_best is not null && !ReferenceEquals(_best, _prev)) _best.Dispose();
        _prev?.Dispose();
        _best = _prev = null;
    }
}
