using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Models.Layers;

/// <summary>
/// A trainable side path added to the output of a frozen projection (LoRA): y = W·x + b + Δ(x).
/// <see cref="Delta"/> returns null while the path is inactive (merged into W, or disabled), so the host adds nothing.
/// </summary>
public interface IProjectionDelta
{
    /// <summary>Δ(x) for the projection's input <paramref name="input"/>, or null when inactive.</summary>
    Tensor? Delta(Tensor input);
}

/// <summary>
/// A block whose Linear / 1×1-conv projections can each carry an <see cref="IProjectionDelta"/> (attached by
/// <c>DiffEgg.FineTuning.Lora.UNetLora</c>). The projections keep their own parameters and checkpoint names; the deltas are not
/// registered submodules, so <c>state_dict()</c> of the host model is unchanged by attaching them.
/// </summary>
public interface IAdaptableBlock
{
    /// <summary>Local module path (as in the checkpoint, e.g. <c>to_out.0</c>) and the frozen projection (a Linear or a Conv2d).</summary>
    IReadOnlyList<(string Name, nn.Module Projection)> Projections { get; }

    /// <summary>Attaches the delta of projection <paramref name="name"/> (null removes it).</summary>
    void SetDelta(string name, IProjectionDelta? delta);
}

/// <summary>The delta slots of one <see cref="IAdaptableBlock"/>.</summary>
internal sealed class DeltaSlots
{
    readonly Dictionary<string, IProjectionDelta> _deltas = new();
    readonly HashSet<string> _names;

    public DeltaSlots(params string[] names) { _names = new HashSet<string>(names); }

    public void Set(string name, IProjectionDelta? delta)
    {
        if (!_names.Contains(name)) throw new ArgumentException($"no adaptable projection '{name}' (have {string.Join(", ", _names)})", nameof(name));
        if (delta is null) _deltas.Remove(name); else _deltas[name] = delta;
    }

    /// <summary>projection(x), plus the attached delta when one is attached and active.</summary>
    public Tensor Apply(string name, nn.Module<Tensor, Tensor> projection, Tensor x)
    {
        var y = projection.forward(x);
        if (_deltas.Count == 0 || !_deltas.TryGetValue(name, out var d)) return y;
        var delta = d.Delta(x);
        return delta is null ? y : y + delta;
    }
}
