using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffEgg.Models.Layers;

/// <summary>GroupNorm with affine <c>weight</c>/<c>bias</c> explicitly initialised to 1/0 (TorchSharp's nn.GroupNorm was seen leaving them uninitialised).</summary>
public sealed class GroupNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter bias;
    public long NumGroups { get; }
    public double Eps { get; }

    /// <summary>Creates the norm with weight = 1 and bias = 0.</summary>
    public GroupNorm(long numGroups, long numChannels, double eps) : base(nameof(GroupNorm))
    {
        if (numGroups <= 0 || numChannels % numGroups != 0)
            throw new ArgumentException($"GroupNorm: {numChannels} channels cannot be split into {numGroups} groups");
        NumGroups = numGroups;
        Eps = eps;
        weight = new Parameter(torch.ones(numChannels));
        bias = new Parameter(torch.zeros(numChannels));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.group_norm(x, NumGroups, weight, bias, Eps);
}

/// <summary>LayerNorm over the last dimension with weight/bias initialised to 1/0.</summary>
public sealed class LayerNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter bias;
    readonly long[] _shape;
    public double Eps { get; }

    /// <summary>Creates the norm with weight = 1 and bias = 0.</summary>
    public LayerNorm(long dim, double eps) : base(nameof(LayerNorm))
    {
        _shape = new[] { dim };
        Eps = eps;
        weight = new Parameter(torch.ones(dim));
        bias = new Parameter(torch.zeros(dim));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.layer_norm(x, _shape, weight, bias, Eps);
}
