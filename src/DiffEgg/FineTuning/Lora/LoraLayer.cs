using DiffEgg.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning.Lora;

/// <summary>
/// One LoRA side path (Hu et al. 2021, as in PEFT): Δ(x) = (α/r)·B·A·dropout(x) added to a frozen Linear (A [r, in], B [out, r]) or 1×1 Conv2d
/// (A [r, in, 1, 1], B [out, r, 1, 1]). A is drawn uniformly from ±1/√in (PEFT's kaiming_uniform(a = √5)), B starts at zero so a fresh
/// layer changes nothing. <see cref="Merge"/> folds (α/r)·B·A into the base weight (the side path then returns null), <see cref="Unmerge"/> takes it out.
/// </summary>
public sealed class LoraLayer : nn.Module, IProjectionDelta
{
    readonly Parameter _a;
    readonly Parameter _b;
    readonly Parameter _baseWeight;

    /// <summary>Module path of the adapted projection in the UNet, e.g. <c>down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q</c>.</summary>
    public string Path { get; }
    public int Rank { get; }
    public double Alpha { get; }
    /// <summary>α / r.</summary>
    public double Scaling => Alpha / Rank;
    public double Dropout { get; }
    public bool IsConv { get; }
    public long InFeatures { get; }
    public long OutFeatures { get; }
    /// <summary>True while (α/r)·B·A is folded into the base weight.</summary>
    public bool Merged { get; private set; }
    /// <summary>False turns the side path off (the base layer alone), without merging.</summary>
    public bool Enabled { get; set; } = true;
    /// <summary>Dropout is applied only while training.</summary>
    public bool Training { get; set; }

    /// <summary>Lower-rank factor A ([r, in] or [r, in, 1, 1]).</summary>
    public Parameter A => _a;
    /// <summary>Up factor B ([out, r] or [out, r, 1, 1]).</summary>
    public Parameter B => _b;

    /// <summary>A LoRA layer for <paramref name="projection"/> (a Linear, or a Conv2d with a 1×1 kernel, stride 1, no padding, no groups).</summary>
    public LoraLayer(string path, nn.Module projection, int rank, double alpha, double dropout, Generator? generator) : base(nameof(LoraLayer))
    {
        Path = path;
        var (w, isConv) = BaseWeightOf(path, projection);
        _baseWeight = w;
        IsConv = isConv;
        OutFeatures = w.shape[0];
        InFeatures = w.shape[1];
        if (rank < 1) throw new ArgumentException($"LoRA rank must be ≥ 1, got {rank} for '{path}'");
        long maxRank = Math.Min(InFeatures, OutFeatures);
        if (rank > maxRank)
            throw new ArgumentException($"LoRA rank {rank} is too large for layer '{path}' ({InFeatures} → {OutFeatures}; at most min(in, out) = {maxRank})");
        if (!(alpha > 0) || double.IsInfinity(alpha)) throw new ArgumentException($"LoRA alpha must be > 0, got {alpha} for '{path}'");
        if (dropout is < 0 or >= 1 || double.IsNaN(dropout)) throw new ArgumentException($"LoRA dropout must lie in [0, 1), got {dropout}");
        Rank = rank; Alpha = alpha; Dropout = dropout;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        double bound = 1.0 / Math.Sqrt(InFeatures);
        long[] aShape = isConv ? new[] { (long)rank, InFeatures, 1, 1 } : new[] { (long)rank, InFeatures };
        long[] bShape = isConv ? new[] { OutFeatures, (long)rank, 1, 1 } : new[] { OutFeatures, (long)rank };
        var a = torch.rand(aShape, dtype: w.dtype, generator: generator).mul_(2 * bound).sub_(bound).to(w.device);
        _a = new Parameter(a.MoveToOuterDisposeScope());
        _b = new Parameter(torch.zeros(bShape, dtype: w.dtype, device: w.device).MoveToOuterDisposeScope());
    }

    /// <summary>The weight of a Linear, or of a 1×1 Conv2d (stride 1, no padding, no groups); anything else is refused naming the layer.</summary>
    internal static (Parameter Weight, bool IsConv) BaseWeightOf(string path, nn.Module projection)
    {
        switch (projection)
        {
            case Linear lin:
                return (lin.weight ?? throw new ArgumentException($"'{path}': Linear without weight"), false);
            case Conv2d conv:
                var w = conv.weight ?? throw new ArgumentException($"'{path}': Conv2d without weight");
                if (w.shape[2] != 1 || w.shape[3] != 1 || conv.groups != 1 || conv.stride.Any(s => s != 1) || conv.padding is { } p && p.Any(x => x != 0))
                    throw new ArgumentException($"'{path}': only 1×1 convolutions (stride 1, no padding, no groups) can carry LoRA, got weight [{string.Join(",", w.shape)}]");
                return (w, true);
            default:
                throw new ArgumentException($"'{path}': a {projection.GetType().Name} cannot carry LoRA (Linear or 1×1 Conv2d only)");
        }
    }

    /// <summary>Δ(x) = (α/r)·B·A·dropout(x); null while merged or disabled.</summary>
    public Tensor? Delta(Tensor input)
    {
        if (Merged || !Enabled) return null;
        using var scope = torch.NewDisposeScope();
        var x = Training && Dropout > 0 ? nn.functional.dropout(input, Dropout, training: true) : input;
        var h = IsConv ? nn.functional.conv2d(nn.functional.conv2d(x, _a), _b) : nn.functional.linear(nn.functional.linear(x, _a), _b);
        return h.mul(Scaling).MoveToOuterDisposeScope();
    }

    /// <summary>(α/r)·B·A shaped like the base weight.</summary>
    public Tensor DeltaWeight()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var ab = _b.reshape(OutFeatures, Rank).matmul(_a.reshape(Rank, InFeatures)).mul(Scaling);
        return ab.reshape(_baseWeight.shape).MoveToOuterDisposeScope();
    }

    /// <summary>Folds the side path into the base weight: W ← W + (α/r)·B·A.</summary>
    public void Merge()
    {
        if (Merged) return;
        using var d = DeltaWeight();
        using (torch.no_grad()) _baseWeight.add_(d);
        Merged = true;
    }

    /// <summary>Takes the side path back out of the base weight: W ← W − (α/r)·B·A.</summary>
    public void Unmerge()
    {
        if (!Merged) return;
        using var d = DeltaWeight();
        using (torch.no_grad()) _baseWeight.sub_(d);
        Merged = false;
    }

    /// <summary>Releases A and B (the base weight belongs to the UNet).</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { _a.Dispose(); _b.Dispose(); }
        base.Dispose(disposing);
    }
}
