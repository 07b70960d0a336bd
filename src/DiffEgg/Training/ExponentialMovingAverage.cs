using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Training;

/// <summary>
/// EMA of weights: after optimizer update n (1-based), e ← d_n·e + (1 − d_n)·θ with d_n = min(decay, (1 + n)/(10 + n))
/// (the warm-up keeps early averages from being dominated by the random initialisation).
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    readonly List<(string Name, Tensor Shadow, Tensor Source)> _items = new();
    public double Decay { get; }

    /// <summary>Starts the average at a copy of <paramref name="parameters"/>.</summary>
    public ExponentialMovingAverage(IEnumerable<(string Name, Tensor Param)> parameters, double decay)
    {
        if (decay is < 0 or >= 1 || double.IsNaN(decay)) throw new ArgumentException($"--ema must lie in [0, 1), got {decay}");
        Decay = decay;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var (name, p) in parameters) _items.Add((name, p.detach().clone().MoveToOuterDisposeScope(), p));
    }

    /// <summary>The decay used for update number <paramref name="n"/> (1-based): min(decay, (1 + n)/(10 + n)).</summary>
    public double DecayAt(long n) => Math.Min(Decay, (1.0 + n) / (10.0 + n));

    /// <summary>Applies update number <paramref name="n"/>: e ← d_n·e + (1 − d_n)·θ.</summary>
    public void Update(long n)
    {
        double d = DecayAt(n);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var (_, shadow, src) in _items) shadow.mul_(d).add_(src.detach(), alpha: 1 - d);
    }

    /// <summary>The averaged tensors by name (owned by this object).</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> Named => _items.Select(i => KeyValuePair.Create(i.Name, i.Shadow));

    /// <summary>The averaged tensor named <paramref name="name"/>.</summary>
    public Tensor this[string name] => _items.First(i => i.Name == name).Shadow;

    /// <summary>Overwrites the averages with same-named tensors (checkpoint resume).</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> values, string source)
    {
        using var _ = torch.no_grad();
        foreach (var (name, shadow, _) in _items)
        {
            if (!values.TryGetValue(name, out var v)) throw new Common.DiffEggException($"{source}: key '{name}' not found");
            shadow.copy_(v);
        }
    }

    public void Dispose()
    {
        foreach (var i in _items) i.Shadow.Dispose();
        _items.Clear();
    }
}
