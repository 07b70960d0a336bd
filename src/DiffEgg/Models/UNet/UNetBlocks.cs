using DiffEgg.Attention;
using DiffEgg.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

using GroupNorm = DiffEgg.Models.Layers.GroupNorm;
using LayerNorm = DiffEgg.Models.Layers.LayerNorm;

namespace DiffEgg.Models.UNet;

/// <summary>A UNet down block: returns the hidden state and the skip tensors it contributes (every resnet/attention output and every downsampler output).</summary>
public abstract class UNetDownBlock : nn.Module
{
    protected UNetDownBlock(string name) : base(name) { }

    /// <summary>The block's <c>layers_per_block</c> resnets: the first maps <paramref name="inChannels"/> to <paramref name="outChannels"/>, the rest keep it.</summary>
    protected static ModuleList<ResnetBlock2D> DownResnets(UNet2DConditionConfig cfg, int inChannels, int outChannels) =>
        nn.ModuleList(Enumerable.Range(0, cfg.LayersPerBlock).Select(i =>
            new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, cfg.TimeEmbedDim, cfg.NormNumGroups, cfg.NormEps, cfg.ResnetOutScaleFactor)).ToArray());
    public abstract (Tensor Hidden, List<Tensor> Skips) forward(Tensor hidden, Tensor temb, Tensor? encoderHiddenStates, IAttentionCapture? sink);
}

/// <summary>A UNet up block: consumes its skips (last first, concatenated on channels) and optionally upsamples to <c>upsampleSize</c>.</summary>
public abstract class UNetUpBlock : nn.Module
{
    protected UNetUpBlock(string name) : base(name) { }

    /// <summary>
    /// The block's <c>layers_per_block + 1</c> resnets, each fed the previous output concatenated with one skip: the first takes
    /// <paramref name="prevOutputChannel"/>, the last skip has <paramref name="inChannels"/> channels, all others <paramref name="outChannels"/>.
    /// </summary>
    protected static ModuleList<ResnetBlock2D> UpResnets(UNet2DConditionConfig cfg, int inChannels, int prevOutputChannel, int outChannels)
    {
        int n = cfg.LayersPerBlock + 1;
        return nn.ModuleList(Enumerable.Range(0, n).Select(i =>
        {
            int skip = i == n - 1 ? inChannels : outChannels;
            int rin = i == 0 ? prevOutputChannel : outChannels;
            return new ResnetBlock2D(rin + skip, outChannels, cfg.TimeEmbedDim, cfg.NormNumGroups, cfg.NormEps, cfg.ResnetOutScaleFactor);
        }).ToArray());
    }
    public abstract int NumResnets { get; }
    public abstract Tensor forward(Tensor hidden, IReadOnlyList<Tensor> skips, Tensor temb, Tensor? encoderHiddenStates, IAttentionCapture? sink, long[]? upsampleSize);
}

/// <summary>diffusers' <c>CrossAttnDownBlock2D</c>: N × (resnet → Transformer2DModel), then an optional stride-2 downsampler.</summary>
public sealed class CrossAttnDownBlock2D : UNetDownBlock
{
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Transformer2DModel> attentions;
    readonly ModuleList<Downsample2D>? downsamplers;

    public CrossAttnDownBlock2D(UNet2DConditionConfig cfg, int inChannels, int outChannels, int heads, int transformerLayers, bool addDownsample)
        : base(nameof(CrossAttnDownBlock2D))
    {
        resnets = DownResnets(cfg, inChannels, outChannels);
        attentions = nn.ModuleList(Enumerable.Range(0, cfg.LayersPerBlock).Select(_ =>
            new Transformer2DModel(heads, outChannels / heads, outChannels, transformerLayers, cfg.NormNumGroups, cfg.CrossAttentionDim,
                cfg.UseLinearProjection, cfg.UpcastAttention)).ToArray());
        if (addDownsample) downsamplers = nn.ModuleList(new Downsample2D(outChannels, outChannels, cfg.DownsamplePadding));
        RegisterComponents();
    }

    public override (Tensor Hidden, List<Tensor> Skips) forward(Tensor hidden, Tensor temb, Tensor? encoderHiddenStates, IAttentionCapture? sink)
    {
        var skips = new List<Tensor>();
        for (int i = 0; i < resnets.Count; i++)
        {
            hidden = resnets[i].forward(hidden, temb);
            hidden = attentions[i].forward(hidden, encoderHiddenStates, sink);
            skips.Add(hidden);
        }
        if (downsamplers is not null)
            foreach (var d in downsamplers) { hidden = d.forward(hidden); skips.Add(hidden); }
        return (hidden, skips);
    }
}

/// <summary>diffusers' <c>DownBlock2D</c>: N resnets, then an optional stride-2 downsampler.</summary>
public sealed class DownBlock2D : UNetDownBlock
{
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Downsample2D>? downsamplers;

    public DownBlock2D(UNet2DConditionConfig cfg, int inChannels, int outChannels, bool addDownsample) : base(nameof(DownBlock2D))
    {
        resnets = DownResnets(cfg, inChannels, outChannels);
        if (addDownsample) downsamplers = nn.ModuleList(new Downsample2D(outChannels, outChannels, cfg.DownsamplePadding));
        RegisterComponents();
    }

    public override (Tensor Hidden, List<Tensor> Skips) forward(Tensor hidden, Tensor temb, Tensor? encoderHiddenStates, IAttentionCapture? sink)
    {
        var skips = new List<Tensor>();
        foreach (var r in resnets) { hidden = r.forward(hidden, temb); skips.Add(hidden); }
        if (downsamplers is not null)
            foreach (var d in downsamplers) { hidden = d.forward(hidden); skips.Add(hidden); }
        return (hidden, skips);
    }
}

/// <summary>diffusers' <c>UNetMidBlock2DCrossAttn</c>: resnet → (Transformer2DModel → resnet) × layers.</summary>
public sealed class UNetMidBlock2DCrossAttn : nn.Module
{
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Transformer2DModel> attentions;

    public UNetMidBlock2DCrossAttn(UNet2DConditionConfig cfg, int channels, int heads, int transformerLayers, int numLayers = 1)
        : base(nameof(UNetMidBlock2DCrossAttn))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers + 1).Select(_ =>
            new ResnetBlock2D(channels, channels, cfg.TimeEmbedDim, cfg.NormNumGroups, cfg.NormEps, cfg.MidBlockScaleFactor)).ToArray());
        attentions = nn.ModuleList(Enumerable.Range(0, numLayers).Select(_ =>
            new Transformer2DModel(heads, channels / heads, channels, transformerLayers, cfg.NormNumGroups, cfg.CrossAttentionDim,
                cfg.UseLinearProjection, cfg.UpcastAttention)).ToArray());
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor temb, Tensor? encoderHiddenStates, IAttentionCapture? sink)
    {
        hidden = resnets[0].forward(hidden, temb);
        for (int i = 0; i < attentions.Count; i++)
        {
            hidden = attentions[i].forward(hidden, encoderHiddenStates, sink);
            hidden = resnets[i + 1].forward(hidden, temb);
        }
        return hidden;
    }
}

/// <summary>diffusers' <c>CrossAttnUpBlock2D</c>: (N+1) × (cat skip → resnet → Transformer2DModel), then an optional nearest-×2 upsampler.</summary>
public sealed class CrossAttnUpBlock2D : UNetUpBlock
{
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Transformer2DModel> attentions;
    readonly ModuleList<Upsample2D>? upsamplers;

    public CrossAttnUpBlock2D(UNet2DConditionConfig cfg, int inChannels, int prevOutputChannel, int outChannels, int heads, int transformerLayers, bool addUpsample)
        : base(nameof(CrossAttnUpBlock2D))
    {
        resnets = UpResnets(cfg, inChannels, prevOutputChannel, outChannels);
        attentions = nn.ModuleList(Enumerable.Range(0, cfg.LayersPerBlock + 1).Select(_ =>
            new Transformer2DModel(heads, outChannels / heads, outChannels, transformerLayers, cfg.NormNumGroups, cfg.CrossAttentionDim,
                cfg.UseLinearProjection, cfg.UpcastAttention)).ToArray());
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, outChannels));
        RegisterComponents();
    }

    public override int NumResnets => resnets.Count;

    public override Tensor forward(Tensor hidden, IReadOnlyList<Tensor> skips, Tensor temb, Tensor? encoderHiddenStates, IAttentionCapture? sink, long[]? upsampleSize)
    {
        for (int i = 0; i < resnets.Count; i++)
        {
            var skip = skips[skips.Count - 1 - i];
            hidden = torch.cat(new[] { hidden, skip }, 1);
            hidden = resnets[i].forward(hidden, temb);
            hidden = attentions[i].forward(hidden, encoderHiddenStates, sink);
        }
        if (upsamplers is not null)
            foreach (var u in upsamplers) hidden = u.forward(hidden, upsampleSize);
        return hidden;
    }
}

/// <summary>diffusers' <c>UpBlock2D</c>: (N+1) × (cat skip → resnet), then an optional nearest-×2 upsampler.</summary>
public sealed class UpBlock2D : UNetUpBlock
{
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Upsample2D>? upsamplers;

    public UpBlock2D(UNet2DConditionConfig cfg, int inChannels, int prevOutputChannel, int outChannels, bool addUpsample) : base(nameof(UpBlock2D))
    {
        resnets = UpResnets(cfg, inChannels, prevOutputChannel, outChannels);
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, outChannels));
        RegisterComponents();
    }

    public override int NumResnets => resnets.Count;

    public override Tensor forward(Tensor hidden, IReadOnlyList<Tensor> skips, Tensor temb, Tensor? encoderHiddenStates, IAttentionCapture? sink, long[]? upsampleSize)
    {
        for (int i = 0; i < resnets.Count; i++)
        {
            var skip = skips[skips.Count - 1 - i];
            hidden = torch.cat(new[] { hidden, skip }, 1);
            hidden = resnets[i].forward(hidden, temb);
        }
        if (upsamplers is not null)
            foreach (var u in upsamplers) hidden = u.forward(hidden, upsampleSize);
        return hidden;
    }
}
