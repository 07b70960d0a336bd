using DiffEgg.Attention;
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

    /// <summary>SA_{n*}: the map of the step at which the KL from its predecessor peaks (owned by this result).</summary>
    public required IAttentionRows Peak { get; init; }

    /// <summary>SA_{n*} as a dense <c>[H·W, H·W]</c> tensor, for maps that were added as tensors (<see cref="PeakKL.Add(int, Tensor)"/>).</summary>
    public Tensor PeakMap => (Peak as DenseAttentionRows)?.Map
        ?? throw new InvalidOperationException("PeakKLResult.PeakMap: the peak map was added as attention rows, not as a tensor; read it with Peak.Rows");

    /// <summary>Disposes <see cref="Peak"/>.</summary>
    public void Dispose() => Peak.Dispose();
}

/// <summary>
/// PeakKL (DiffEGG Alg 1): over the accumulated self-attention maps SA_1 … SA_N at timesteps τ₁ &gt; … &gt; τ_N, the
/// curve KL_n = (1/HW) Σ_pixels KL(SA_n[pixel] ‖ SA_{n−1}[pixel]) (row-wise, ε as in <see cref="EdgeKL"/>), its argmax n*
/// and the map SA_{n*} — the later (less noisy) map of the pair with the largest change, i.e. the step at which the
/// structure has just emerged. Streaming: only the previous map, the best map and the incoming one are held, and the KL is
/// computed block by block of grid rows (<see cref="IAttentionRows"/>), so with <see cref="QueryKeyAttention"/> maps no
/// (H·W)² tensor is ever whole.
/// </summary>
public sealed class PeakKL : IDisposable
{
    readonly List<int> _timesteps = new();
    readonly List<double> _curve = new();
    IAttentionRows? _prev;
    IAttentionRows? _best;
    int _bestIndex;
    double _bestKl = double.NegativeInfinity;
    long _hw = -1;
    bool _disposed, _taken;

    /// <summary>ε inside the logarithms (default 1e-8, as <see cref="EdgeKL"/>).</summary>
    public double Eps { get; init; } = 1e-8;

    /// <summary>Budget for the temporaries of one block of rows (<see cref="EdgeKL.DefaultChunkBytes"/>).</summary>
    public long ChunkBytes { get; init; } = EdgeKL.DefaultChunkBytes;

    /// <summary>Number of maps added.</summary>
    public int Count => _timesteps.Count;

    /// <summary>Adds SA_n (<c>[H·W, H·W]</c> or <c>[1, H·W, H·W]</c>) at timestep τ_n (strictly below the previous one) and computes KL_n (Alg 1, loop body). The map is copied.</summary>
    public void Add(int timestep, Tensor map)
    {
        ArgumentNullException.ThrowIfNull(map);
        string name = $"map at timestep {timestep}";
        bool ok = (map.dim() == 2 && map.shape[0] == map.shape[1]) || (map.dim() == 3 && map.shape[0] == 1 && map.shape[1] == map.shape[2]);
        if (!ok) throw new ArgumentException($"{name} {TensorChecks.Shape(map)}: expected [H·W, H·W] or [1, H·W, H·W]", nameof(map));
        long hw = map.shape[^1];
        CheckNext(timestep, hw, TensorChecks.Shape(map));
        TensorChecks.RequireRowDistributions(map, name);
        Tensor cur;
        using (no_grad())
        using (NewDisposeScope())
            cur = map.reshape(hw, hw).to_type(ScalarType.Float32, copy: true).DetachFromDisposeScope();
        // the pixels' grid is unknown here; a column of H·W pixels reads the same rows
        Add(timestep, new DenseAttentionRows(cur, (int)hw, 1, owned: true));
    }

    /// <summary>Adds SA_n at timestep τ_n (strictly below the previous one) and computes KL_n block by block (Alg 1, loop body); this object takes ownership of <paramref name="map"/>.</summary>
    public void Add(int timestep, IAttentionRows map)
    {
        ArgumentNullException.ThrowIfNull(map);
        long hw = (long)map.Height * map.Width;
        try { CheckNext(timestep, hw, $"[{map.Height}×{map.Width} grid]"); }
        catch { map.Dispose(); throw; }

        double kl = double.NaN;
        if (_prev is not null)
        {
            try
            {
                using (no_grad()) kl = EdgeKL.MeanRowDivergence(map, _prev, EdgeMetric.KL, Eps, ChunkBytes);
            }
            catch { map.Dispose(); throw; }
        }
        _hw = hw;
        _timesteps.Add(timestep);
        _curve.Add(kl);
        int n = _timesteps.Count - 1;

        bool newBest = n == 0 || (!double.IsNaN(kl) && (n == 1 || kl > _bestKl));
        if (newBest)
        {
            if (_best is not null && !ReferenceEquals(_best, _prev)) _best.Dispose();
            _best = map;
            _bestIndex = n;
            _bestKl = n == 0 ? double.NegativeInfinity : kl;
        }
        if (_prev is not null && !ReferenceEquals(_prev, _best)) _prev.Dispose();
        _prev = map;
    }

    void CheckNext(int timestep, long hw, string shape)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_taken) throw new InvalidOperationException("PeakKL: Result() has handed over the peak map; start a new PeakKL");
        string name = $"map at timestep {timestep}";
        if (_hw >= 0 && hw != _hw)
            throw new ArgumentException($"{name} {shape}: H·W = {hw} differs from {_hw} of the earlier maps");
        if (_timesteps.Count > 0 && timestep >= _timesteps[^1])
            throw new ArgumentException($"{name} {shape}: timesteps must strictly decrease (τ₁ > … > τ_N), previous was {_timesteps[^1]}", nameof(timestep));
    }

    /// <summary>The curve, n* and SA_{n*} (Alg 1 output); hands the peak map over to the result (call once).</summary>
    public PeakKLResult Result()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_taken) throw new InvalidOperationException("PeakKL.Result: already taken");
        if (_best is null) throw new InvalidOperationException("PeakKL.Result: no map was added");
        _taken = true;
        var best = _best;
        if (_prev is not null && !ReferenceEquals(_prev, best)) _prev.Dispose();
        _prev = _best = null;
        return new PeakKLResult
        {
            Timesteps = _timesteps.ToArray(),
            Curve = _curve.ToArray(),
            PeakIndex = _bestIndex,
            Peak = best,
        };
    }

    /// <summary>Alg 1 over all maps at once (same result as streaming <see cref="Add(int, Tensor)"/>).</summary>
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
