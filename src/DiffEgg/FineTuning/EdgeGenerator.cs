using System.Globalization;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Models.UNet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

using GroupNorm = DiffEgg.Models.Layers.GroupNorm;

namespace DiffEgg.FineTuning;

/// <summary>Shape of the edge generator G_φ: the UNet decoder features it reads and its width.</summary>
public sealed record EdgeGeneratorConfig
{
    /// <summary>Indices i of the <c>up_blocks.i</c> outputs used, coarsest first.</summary>
    public required int[] UpBlocks { get; init; }
    /// <summary>Channels of each used feature (the UNet's up-block widths).</summary>
    public required int[] InChannels { get; init; }
    /// <summary>Width D of the FPN (lateral outputs, smoothing and head convs).</summary>
    public int FpnChannels { get; init; } = 32;
    /// <summary>GroupNorm groups (must divide <see cref="FpnChannels"/>).</summary>
    public int NormGroups { get; init; } = 8;

    /// <summary>G_φ for every up block of <paramref name="unet"/>.</summary>
    public static EdgeGeneratorConfig For(UNet2DConditionModel unet, int fpnChannels = 32, int normGroups = 8)
    {
        var ch = unet.UpBlockChannels;
        return new EdgeGeneratorConfig { UpBlocks = Enumerable.Range(0, ch.Length).ToArray(), InChannels = ch, FpnChannels = fpnChannels, NormGroups = normGroups };
    }

    /// <summary>Throws a <see cref="DiffEggException"/> naming <paramref name="source"/> (e.g. the adapter's config.json) and the first inconsistent key.</summary>
    public void Validate(string source = "edge generator")
    {
        string L(int[] v) => "[" + string.Join(",", v) + "]";
        if (UpBlocks.Length == 0) throw new DiffEggException($"{source}: key 'up_blocks': at least one up block is needed");
        if (UpBlocks.Length != InChannels.Length)
            throw new DiffEggException($"{source}: key 'in_channels' = {L(InChannels)} has {InChannels.Length} entries, 'up_blocks' = {L(UpBlocks)} {UpBlocks.Length}");
        if (UpBlocks.Distinct().Count() != UpBlocks.Length || UpBlocks.Zip(UpBlocks.Skip(1)).Any(p => p.Second <= p.First))
            throw new DiffEggException($"{source}: key 'up_blocks' = {L(UpBlocks)} must increase strictly (coarsest first)");
        if (InChannels.Any(c => c < 1)) throw new DiffEggException($"{source}: key 'in_channels' = {L(InChannels)} must be positive");
        if (FpnChannels < 1) throw new DiffEggException($"{source}: key 'fpn_channels' = {FpnChannels} must be positive");
        if (NormGroups < 1 || FpnChannels % NormGroups != 0)
            throw new DiffEggException($"{source}: key 'norm_num_groups' = {NormGroups} must divide fpn_channels {FpnChannels}");
    }

    /// <summary>Checks the config against the UNet the features come from; the message names the config key.</summary>
    public void CheckAgainst(UNet2DConditionModel unet, string source)
    {
        var ch = unet.UpBlockChannels;
        for (int i = 0; i < UpBlocks.Length; i++)
        {
            if (UpBlocks[i] < 0 || UpBlocks[i] >= ch.Length)
                throw new DiffEggException($"{source}: key 'up_blocks' = [{string.Join(",", UpBlocks)}]: the UNet has up blocks 0..{ch.Length - 1}");
            if (ch[UpBlocks[i]] != InChannels[i])
                throw new DiffEggException($"{source}: key 'in_channels' = [{string.Join(",", InChannels)}] does not match the UNet's up-block widths [{string.Join(",", UpBlocks.Select(u => ch[u]))}] (adapter made for another model?)");
        }
    }
}

/// <summary>
/// DiffEGG's edge generator G_φ (Alg 3), UPerNet-style FPN over the UNet decoder features at τ: a lateral 1×1 conv per feature to D channels,
/// top-down sum (coarser level resized bilinearly to the finer one), a 3×3 conv + GroupNorm + SiLU per level, all levels resized to the finest
/// and concatenated, a 3×3 fuse conv (n·D → D) + GroupNorm + SiLU, a 3×3 head conv + GroupNorm + SiLU, and a 1×1 classifier to one edge
/// logit, finally resized bilinearly to the requested output size. GroupNorm weights/biases are set to 1/0 explicitly.
/// </summary>
public sealed class EdgeGenerator : nn.Module
{
    readonly ModuleList<Conv2d> lateral_convs;
    readonly ModuleList<Conv2d> fpn_convs;
    readonly ModuleList<GroupNorm> fpn_norms;
    readonly Conv2d fuse_conv;
    readonly GroupNorm fuse_norm;
    readonly Conv2d head_conv;
    readonly GroupNorm head_norm;
    readonly Conv2d classifier;

    public EdgeGeneratorConfig Config { get; }

    /// <summary>Builds G_φ with TorchSharp's default conv initialisation (from torch's global generator: seed it first) and unit/zero norms.</summary>
    public EdgeGenerator(EdgeGeneratorConfig config) : base(nameof(EdgeGenerator))
    {
        config.Validate();
        Config = config;
        int d = config.FpnChannels, n = config.InChannels.Length;
        lateral_convs = nn.ModuleList(config.InChannels.Select(c => nn.Conv2d(c, d, 1)).ToArray());
        fpn_convs = nn.ModuleList(Enumerable.Range(0, n).Select(_ => nn.Conv2d(d, d, 3, padding: 1)).ToArray());
        fpn_norms = nn.ModuleList(Enumerable.Range(0, n).Select(_ => new GroupNorm(config.NormGroups, d, 1e-5)).ToArray());
        fuse_conv = nn.Conv2d(n * d, d, 3, padding: 1);
        fuse_norm = new GroupNorm(config.NormGroups, d, 1e-5);
        head_conv = nn.Conv2d(d, d, 3, padding: 1);
        head_norm = new GroupNorm(config.NormGroups, d, 1e-5);
        classifier = nn.Conv2d(d, 1, 1);
        RegisterComponents();
    }

    /// <summary>Edge logits [B, 1, outHeight, outWidth] from the decoder features (<see cref="EdgeGeneratorConfig.UpBlocks"/> order, coarsest first).</summary>
    public Tensor forward(IReadOnlyList<Tensor> features, long outHeight, long outWidth)
    {
        if (features.Count != Config.InChannels.Length)
            throw new ArgumentException($"edge generator: {features.Count} feature maps given, {Config.InChannels.Length} expected");
        for (int i = 0; i < features.Count; i++)
            if (features[i].dim() != 4 || features[i].shape[1] != Config.InChannels[i])
                throw new ArgumentException($"edge generator: feature {i} has shape {TensorChecks.Shape(features[i])}, expected [B, {Config.InChannels[i]}, H, W]");
        using var scope = torch.NewDisposeScope();
        int n = features.Count;
        var p = new Tensor[n];
        for (int i = 0; i < n; i++)
        {
            var l = lateral_convs[i].forward(features[i]);
            p[i] = i == 0 ? l : l + Resize(p[i - 1], l.shape[2], l.shape[3]);
        }
        long fh = p.Max(t => t.shape[2]), fw = p.Max(t => t.shape[3]);
        var levels = new Tensor[n];
        for (int i = 0; i < n; i++)
            levels[i] = Resize(nn.functional.silu(fpn_norms[i].forward(fpn_convs[i].forward(p[i]))), fh, fw);
        var x = nn.functional.silu(fuse_norm.forward(fuse_conv.forward(torch.cat(levels, 1))));
        x = nn.functional.silu(head_norm.forward(head_conv.forward(x)));
        var logits = Resize(classifier.forward(x), outHeight, outWidth);
        return logits.MoveToOuterDisposeScope();
    }

    static Tensor Resize(Tensor t, long h, long w) =>
        t.shape[2] == h && t.shape[3] == w ? t : nn.functional.interpolate(t, size: new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);

    /// <summary>Parameters by name, in registration order.</summary>
    public List<KeyValuePair<string, Tensor>> NamedTensors() => named_parameters().Select(p => KeyValuePair.Create(p.name, (Tensor)p.parameter)).ToList();
}

/// <summary>Collects the <c>up_blocks.i</c> outputs a <see cref="EdgeGenerator"/> needs during one UNet forward (they stay in the autograd graph).</summary>
public sealed class DecoderFeatures : IDecoderFeatureSink, IDisposable
{
    readonly int[] _wanted;
    readonly Tensor?[] _features;

    /// <summary>Keeps the outputs of the up blocks listed in <paramref name="upBlocks"/>.</summary>
    public DecoderFeatures(IReadOnlyList<int> upBlocks) { _wanted = upBlocks.ToArray(); _features = new Tensor?[_wanted.Length]; }

    public void AddUpBlock(int index, Tensor hidden)
    {
        int k = Array.IndexOf(_wanted, index);
        if (k < 0) return;
        _features[k]?.Dispose();
        _features[k] = hidden.DetachFromDisposeScope();
    }

    /// <summary>The collected features, coarsest first; throws if the forward did not deliver all of them.</summary>
    public IReadOnlyList<Tensor> Features =>
        _features.Select((t, i) => t ?? throw new InvalidOperationException($"up_blocks.{_wanted[i]} was not captured")).ToList();

    public void Dispose()
    {
        for (int i = 0; i < _features.Length; i++) { _features[i]?.Dispose(); _features[i] = null; }
    }
}
