using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffEgg.Models.Layers;

/// <summary>diffusers' <c>ResnetBlock2D</c> (time_embedding_norm "default", silu): norm1→silu→conv1 (+time_emb_proj(silu(temb))) →norm2→silu→conv2, plus (1×1 shortcut of) the input.</summary>
public sealed class ResnetBlock2D : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly GroupNorm norm1;
    readonly Conv2d conv1;
    readonly Linear? time_emb_proj;
    readonly GroupNorm norm2;
    readonly Conv2d conv2;
    readonly Conv2d? conv_shortcut;
    readonly double _outputScale;

    public ResnetBlock2D(int inChannels, int outChannels, int? tembChannels, int groups, double eps, double outputScaleFactor = 1.0)
        : base(nameof(ResnetBlock2D))
    {
        norm1 = new GroupNorm(groups, inChannels, eps);
        conv1 = nn.Conv2d(inChannels, outChannels, 3, padding: 1);
        if (tembChannels is int tc) time_emb_proj = nn.Linear(tc, outChannels);
        norm2 = new GroupNorm(groups, outChannels, eps);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1);
        if (inChannels != outChannels) conv_shortcut = nn.Conv2d(inChannels, outChannels, 1);
        _outputScale = outputScaleFactor;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input, Tensor? temb)
    {
        using var scope = torch.NewDisposeScope();
        var h = conv1.forward(nn.functional.silu(norm1.forward(input)));
        if (temb is not null && time_emb_proj is not null)
            h = h + time_emb_proj.forward(nn.functional.silu(temb)).unsqueeze(-1).unsqueeze(-1);
        h = conv2.forward(nn.functional.silu(norm2.forward(h)));
        var x = conv_shortcut is null ? input : conv_shortcut.forward(input);
        var o = x + h;
        if (_outputScale != 1.0) o = o / _outputScale;
        return o.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>Downsample2D</c> with a conv: 3×3 stride-2 conv with padding p; padding 0 means an explicit (0,1,0,1) pad first (VAE encoder).</summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv;
    readonly int _padding;

    public Downsample2D(int channels, int outChannels, int padding) : base(nameof(Downsample2D))
    {
        _padding = padding;
        conv = nn.Conv2d(channels, outChannels, 3, stride: 2, padding: padding);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (_padding != 0) return conv.forward(x);
        using var scope = torch.NewDisposeScope();
        var padded = nn.functional.pad(x, new long[] { 0, 1, 0, 1 }, PaddingModes.Constant, 0);
        return conv.forward(padded).MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>Upsample2D</c> with a conv: nearest ×2 (or to an explicit size) then 3×3 conv.</summary>
public sealed class Upsample2D : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv;

    public Upsample2D(int channels, int outChannels) : base(nameof(Upsample2D))
    {
        conv = nn.Conv2d(channels, outChannels, 3, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => forward(x, null);

    /// <summary>Nearest upsampling to <paramref name="size"/> (H, W) when given, else ×2; then the conv.</summary>
    public Tensor forward(Tensor x, long[]? size)
    {
        using var scope = torch.NewDisposeScope();
        var up = size is null
            ? nn.functional.interpolate(x, scale_factor: new[] { 2.0, 2.0 }, mode: InterpolationMode.Nearest)
            : nn.functional.interpolate(x, size: size, mode: InterpolationMode.Nearest);
        return conv.forward(up).MoveToOuterDisposeScope();
    }
}
