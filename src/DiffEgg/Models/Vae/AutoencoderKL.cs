using DiffEgg.Common;
using DiffEgg.Models.Config;
using DiffEgg.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

using GroupNorm = DiffEgg.Models.Layers.GroupNorm;
using LayerNorm = DiffEgg.Models.Layers.LayerNorm;

namespace DiffEgg.Models.Vae;

/// <summary>The subset of diffusers' <c>AutoencoderKL</c> config DiffEgg implements (SD 1.x/2.x VAE).</summary>
public sealed record AutoencoderKLConfig
{
    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    public int LatentChannels { get; init; } = 4;
    public int[] BlockOutChannels { get; init; } = { 128, 256, 512, 512 };
    public int LayersPerBlock { get; init; } = 2;
    public int NormNumGroups { get; init; } = 32;
    public double ScalingFactor { get; init; } = 0.18215;
    public int SampleSize { get; init; } = 512;

    /// <summary>Reads <c>vae/config.json</c>; unsupported values throw naming the file and key.</summary>
    /// <summary>Keys of diffusers' config that do not change this inference (not warned about as unknown).</summary>
    public static readonly string[] IgnoredKeys = { "force_upcast" /* float16 pipelines only; DiffEgg runs float32 */ };

    public static AutoencoderKLConfig FromJson(JsonConfig c)
    {
        c.RequireNullOr("_class_name", "AutoencoderKL");
        c.RequireNullOr("act_fn", "silu");
        c.RequireNullOr("latents_mean");
        c.RequireNullOr("latents_std");
        c.RequireNullOr("use_quant_conv", true);
        c.RequireNullOr("use_post_quant_conv", true);
        c.RequireNullOr("mid_block_add_attention", true);
        var boc = c.IntArray("block_out_channels", new[] { 64 });
        var down = c.StringArray("down_block_types", Enumerable.Repeat("DownEncoderBlock2D", boc.Length).ToArray());
        var up = c.StringArray("up_block_types", Enumerable.Repeat("UpDecoderBlock2D", boc.Length).ToArray());
        if (down.Length != boc.Length || down.Any(d => d != "DownEncoderBlock2D")) throw c.Unsupported("down_block_types", down, $"{boc.Length} × DownEncoderBlock2D");
        if (up.Length != boc.Length || up.Any(d => d != "UpDecoderBlock2D")) throw c.Unsupported("up_block_types", up, $"{boc.Length} × UpDecoderBlock2D");
        int groups = c.Int("norm_num_groups", 32);
        foreach (var ch in boc) if (ch % groups != 0) throw c.Error("norm_num_groups", $"{groups} does not divide block_out_channels entry {ch}");
        return new AutoencoderKLConfig
        {
            InChannels = c.Int("in_channels", 3),
            OutChannels = c.Int("out_channels", 3),
            LatentChannels = c.Int("latent_channels", 4),
            BlockOutChannels = boc,
            LayersPerBlock = c.Int("layers_per_block", 1),
            NormNumGroups = groups,
            ScalingFactor = c.Double("scaling_factor", 0.18215),
            SampleSize = c.Int("sample_size", 32),
        };
    }
}

/// <summary>diffusers' <c>UNetMidBlock2D</c> as used in the VAE: resnet → single-head attention (with group_norm, biases, residual) → resnet.</summary>
public sealed class VaeMidBlock2D : nn.Module<Tensor, Tensor>
{
    readonly ModuleList<Layers.Attention> attentions;
    readonly ModuleList<ResnetBlock2D> resnets;

    public VaeMidBlock2D(int channels, int groups) : base(nameof(VaeMidBlock2D))
    {
        attentions = nn.ModuleList(new Layers.Attention(channels, null, 1, channels, bias: true, residualConnection: true, normGroups: groups, normEps: 1e-6));
        resnets = nn.ModuleList(new ResnetBlock2D(channels, channels, null, groups, 1e-6), new ResnetBlock2D(channels, channels, null, groups, 1e-6));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        x = resnets[0].forward(x, null);
        x = attentions[0].forward(x, null);
        x = resnets[1].forward(x, null);
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>DownEncoderBlock2D</c>: resnets (no time embedding, eps 1e-6), optional downsampler with the asymmetric (0,1,0,1) pad.</summary>
public sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Downsample2D>? downsamplers;

    public DownEncoderBlock2D(int inChannels, int outChannels, int layers, int groups, bool addDownsample) : base(nameof(DownEncoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers).Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, null, groups, 1e-6)).ToArray());
        if (addDownsample) downsamplers = nn.ModuleList(new Downsample2D(outChannels, outChannels, padding: 0));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var r in resnets) x = r.forward(x, null);
        if (downsamplers is not null) foreach (var d in downsamplers) x = d.forward(x);
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>UpDecoderBlock2D</c>: resnets (eps 1e-6), optional nearest-×2 upsampler with conv.</summary>
public sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    readonly ModuleList<ResnetBlock2D> resnets;
    readonly ModuleList<Upsample2D>? upsamplers;

    public UpDecoderBlock2D(int inChannels, int outChannels, int layers, int groups, bool addUpsample) : base(nameof(UpDecoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers).Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, null, groups, 1e-6)).ToArray());
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, outChannels));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var r in resnets) x = r.forward(x, null);
        if (upsamplers is not null) foreach (var u in upsamplers) x = u.forward(x);
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' VAE <c>Encoder</c> (double_z): conv_in → down blocks → mid block → GN → silu → conv_out (2·latent channels).</summary>
public sealed class VaeEncoder : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv_in;
    readonly ModuleList<DownEncoderBlock2D> down_blocks;
    readonly VaeMidBlock2D mid_block;
    readonly GroupNorm conv_norm_out;
    readonly Conv2d conv_out;

    public VaeEncoder(AutoencoderKLConfig c) : base("Encoder")
    {
        var boc = c.BlockOutChannels;
        conv_in = nn.Conv2d(c.InChannels, boc[0], 3, padding: 1);
        var blocks = new List<DownEncoderBlock2D>();
        int outCh = boc[0];
        for (int i = 0; i < boc.Length; i++)
        {
            int inCh = outCh; outCh = boc[i];
            blocks.Add(new DownEncoderBlock2D(inCh, outCh, c.LayersPerBlock, c.NormNumGroups, i != boc.Length - 1));
        }
        down_blocks = nn.ModuleList(blocks.ToArray());
        mid_block = new VaeMidBlock2D(boc[^1], c.NormNumGroups);
        conv_norm_out = new GroupNorm(c.NormNumGroups, boc[^1], 1e-6);
        conv_out = nn.Conv2d(boc[^1], 2 * c.LatentChannels, 3, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        x = conv_in.forward(x);
        foreach (var d in down_blocks) x = d.forward(x);
        x = mid_block.forward(x);
        x = conv_out.forward(nn.functional.silu(conv_norm_out.forward(x)));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' VAE <c>Decoder</c>: conv_in → mid block → up blocks (layers+1 resnets each) → GN → silu → conv_out.</summary>
public sealed class VaeDecoder : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv_in;
    readonly VaeMidBlock2D mid_block;
    readonly ModuleList<UpDecoderBlock2D> up_blocks;
    readonly GroupNorm conv_norm_out;
    readonly Conv2d conv_out;

    public VaeDecoder(AutoencoderKLConfig c) : base("Decoder")
    {
        var rev = c.BlockOutChannels.Reverse().ToArray();
        conv_in = nn.Conv2d(c.LatentChannels, rev[0], 3, padding: 1);
        mid_block = new VaeMidBlock2D(rev[0], c.NormNumGroups);
        var blocks = new List<UpDecoderBlock2D>();
        int outCh = rev[0];
        for (int i = 0; i < rev.Length; i++)
        {
            int prev = outCh; outCh = rev[i];
            blocks.Add(new UpDecoderBlock2D(prev, outCh, c.LayersPerBlock + 1, c.NormNumGroups, i != rev.Length - 1));
        }
        up_blocks = nn.ModuleList(blocks.ToArray());
        conv_norm_out = new GroupNorm(c.NormNumGroups, c.BlockOutChannels[0], 1e-6);
        conv_out = nn.Conv2d(c.BlockOutChannels[0], c.OutChannels, 3, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor z)
    {
        using var scope = torch.NewDisposeScope();
        z = conv_in.forward(z);
        z = mid_block.forward(z);
        foreach (var u in up_blocks) z = u.forward(z);
        z = conv_out.forward(nn.functional.silu(conv_norm_out.forward(z)));
        return z.MoveToOuterDisposeScope();
    }
}

/// <summary>The diagonal Gaussian posterior q(z|x) of the VAE: mean, logvar (clamped to [−30, 20]) and std = exp(logvar/2).</summary>
public sealed class DiagonalGaussian : IDisposable
{
    public Tensor Mean { get; }
    public Tensor LogVar { get; }
    public Tensor Std { get; }

    /// <summary>Splits the 2·latent moments into mean and logvar, clamps logvar to [−30, 20], std = exp(logvar/2).</summary>
    public DiagonalGaussian(Tensor moments)
    {
        using var scope = torch.NewDisposeScope();
        var parts = moments.chunk(2, 1);
        Mean = parts[0].contiguous().MoveToOuterDisposeScope();
        LogVar = parts[1].clamp(-30.0, 20.0).MoveToOuterDisposeScope();
        Std = (LogVar * 0.5).exp().MoveToOuterDisposeScope();
    }

    /// <summary>Draws z = mean + std·ε with the given generator.</summary>
    public Tensor Sample(Generator? generator = null)
    {
        using var scope = torch.NewDisposeScope();
        var eps = torch.randn(Mean.shape, dtype: Mean.dtype, device: Mean.device, generator: generator);
        return (Mean + Std * eps).MoveToOuterDisposeScope();
    }

    public void Dispose() { Mean.Dispose(); LogVar.Dispose(); Std.Dispose(); }
}

/// <summary>diffusers' <c>AutoencoderKL</c>: encoder + quant_conv → posterior; post_quant_conv + decoder. Latents for the UNet are mean × <see cref="ScalingFactor"/>.</summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    readonly VaeEncoder encoder;
    readonly VaeDecoder decoder;
    readonly Conv2d quant_conv;
    readonly Conv2d post_quant_conv;

    public AutoencoderKLConfig Config { get; }
    public double ScalingFactor => Config.ScalingFactor;
    /// <summary>Spatial downsampling factor image → latent (2^(levels−1), 8 for SD).</summary>
    public int DownFactor => 1 << (Config.BlockOutChannels.Length - 1);

    public AutoencoderKL(AutoencoderKLConfig config) : base(nameof(AutoencoderKL))
    {
        Config = config;
        encoder = new VaeEncoder(config);
        decoder = new VaeDecoder(config);
        quant_conv = nn.Conv2d(2 * config.LatentChannels, 2 * config.LatentChannels, 1);
        post_quant_conv = nn.Conv2d(config.LatentChannels, config.LatentChannels, 1);
        RegisterComponents();
    }

    /// <summary>Loads <c>config.json</c> and the safetensors weights of a diffusers <c>vae/</c> folder (deprecated attention names are mapped).</summary>
    public static AutoencoderKL FromFolder(string folder)
    {
        var json = JsonConfig.Load(System.IO.Path.Combine(folder, "config.json"));
        var cfg = AutoencoderKLConfig.FromJson(json);
        json.WarnUnknownKeys(AutoencoderKLConfig.IgnoredKeys);
        var model = new AutoencoderKL(cfg);
        try { StateDictLoader.Load(model, ModelFiles.Weights(folder, "diffusion_pytorch_model"), nameof(AutoencoderKL)); }
        catch { model.Dispose(); throw; }
        model.eval();
        return model;
    }

    /// <summary>Encodes images in [−1, 1] [B, 3, H, W] to the latent posterior.</summary>
    public DiagonalGaussian Encode(Tensor image)
    {
        Tensor moments;
        using (var scope = torch.NewDisposeScope())
            moments = quant_conv.forward(encoder.forward(image)).MoveToOuterDisposeScope();
        try { return new DiagonalGaussian(moments); }
        finally { moments.Dispose(); }
    }

    /// <summary>Decodes (unscaled) latents z to images (no clamping).</summary>
    public Tensor Decode(Tensor z)
    {
        using var scope = torch.NewDisposeScope();
        return decoder.forward(post_quant_conv.forward(z)).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction through the posterior mean: decode(encode(x).mean).</summary>
    public override Tensor forward(Tensor image)
    {
        using var post = Encode(image);
        return Decode(post.Mean);
    }
}
