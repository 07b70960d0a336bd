using DiffEgg.Attention;
using DiffEgg.Common;
using DiffEgg.Models.Config;
using DiffEgg.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

using GroupNorm = DiffEgg.Models.Layers.GroupNorm;
using LayerNorm = DiffEgg.Models.Layers.LayerNorm;

namespace DiffEgg.Models.UNet;

/// <summary>diffusers' <c>Timesteps</c>: sinusoidal projection [cos, sin] (flip_sin_to_cos) with freqs exp(−ln(10000)·i/(half − shift)), computed in float32.</summary>
public sealed class Timesteps : nn.Module<Tensor, Tensor>
{
    readonly int _dim;
    readonly bool _flip;
    readonly double _shift;

    public Timesteps(int dim, bool flipSinToCos, double freqShift) : base(nameof(Timesteps))
    {
        _dim = dim; _flip = flipSinToCos; _shift = freqShift;
    }

    /// <summary>Embeds 1-D timesteps [B] → [B, dim] (float32).</summary>
    public override Tensor forward(Tensor timesteps)
    {
        using var scope = torch.NewDisposeScope();
        int half = _dim / 2;
        var exponent = torch.arange(0, half, dtype: ScalarType.Float32, device: timesteps.device) * (-Math.Log(10000.0));
        exponent = exponent / (half - _shift);
        var freqs = exponent.exp();
        var arg = timesteps.unsqueeze(1).to_type(ScalarType.Float32) * freqs.unsqueeze(0);
        var emb = torch.cat(new[] { arg.sin(), arg.cos() }, -1);
        if (_flip) emb = torch.cat(new[] { emb.narrow(1, half, half), emb.narrow(1, 0, half) }, -1);
        if (_dim % 2 == 1) emb = nn.functional.pad(emb, new long[] { 0, 1, 0, 0 });
        return emb.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>TimestepEmbedding</c>: linear_1 → silu → linear_2.</summary>
public sealed class TimestepEmbedding : nn.Module<Tensor, Tensor>
{
    readonly Linear linear_1;
    readonly Linear linear_2;

    public TimestepEmbedding(int inChannels, int timeEmbedDim) : base(nameof(TimestepEmbedding))
    {
        linear_1 = nn.Linear(inChannels, timeEmbedDim);
        linear_2 = nn.Linear(timeEmbedDim, timeEmbedDim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return linear_2.forward(nn.functional.silu(linear_1.forward(x))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Receives the decoder features of <c>UNet2DConditionModel.forward(…, decoder)</c>: the output of <c>up_blocks.i</c>, i = 0 (coarsest) first.
/// The tensor belongs to the UNet's dispose scope and is disposed when the forward returns: a sink that keeps it must take it out of that
/// scope (<c>DetachFromDisposeScope</c>) and dispose it itself. It is not detached from autograd, so losses on it train what produced it.
/// </summary>
public interface IDecoderFeatureSink
{
    void AddUpBlock(int index, Tensor hidden);
}

/// <summary>
/// diffusers' <c>UNet2DConditionModel</c> (SD 1.x/2.x structure), config-driven. Parameter names equal the diffusers checkpoint keys.
/// <c>forward(…, sink)</c> can hand every attn1 self-attention probability map to an <see cref="IAttentionSink"/> (DiffEGG's input, Eq. 11)
/// and can record per-block intermediates.
/// </summary>
public sealed class UNet2DConditionModel : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly Conv2d conv_in;
    readonly Timesteps time_proj;
    readonly TimestepEmbedding time_embedding;
    readonly ModuleList<UNetDownBlock> down_blocks;
    readonly UNetMidBlock2DCrossAttn mid_block;
    readonly ModuleList<UNetUpBlock> up_blocks;
    readonly GroupNorm conv_norm_out;
    readonly Conv2d conv_out;

    public UNet2DConditionConfig Config { get; }

    /// <summary>Total downsampling of the UNet (2^(levels−1), 8 for SD 1.5): inputs whose sides are multiples of it keep their aspect ratio at every level.</summary>
    public int DownFactor => 1 << (Config.BlockOutChannels.Length - 1);

    /// <summary>Output channels of <c>up_blocks.i</c> (the decoder features a <see cref="IDecoderFeatureSink"/> receives), i = 0 (coarsest) first.</summary>
    public int[] UpBlockChannels => Config.BlockOutChannels.Reverse().ToArray();

    /// <summary>Module paths of every attn1 layer, in forward order (the layer names the sink receives).</summary>
    public IReadOnlyList<string> SelfAttentionLayers { get; }

    /// <summary>Builds the network from <paramref name="config"/> with freshly initialised weights (norms weight 1 / bias 0; convs and linears TorchSharp's default init).</summary>
    public UNet2DConditionModel(UNet2DConditionConfig config) : base(nameof(UNet2DConditionModel))
    {
        Config = config;
        var boc = config.BlockOutChannels;
        int n = boc.Length;
        conv_in = nn.Conv2d(config.InChannels, boc[0], config.ConvInKernel, padding: (config.ConvInKernel - 1) / 2);
        time_proj = new Timesteps(boc[0], config.FlipSinToCos, config.FreqShift);
        time_embedding = new TimestepEmbedding(boc[0], config.TimeEmbedDim);

        var downs = new List<UNetDownBlock>();
        int outCh = boc[0];
        for (int i = 0; i < n; i++)
        {
            int inCh = outCh;
            outCh = boc[i];
            bool final = i == n - 1;
            downs.Add(config.DownBlockTypes[i] == "CrossAttnDownBlock2D"
                ? new CrossAttnDownBlock2D(config, inCh, outCh, config.AttentionHeads[i], config.TransformerLayersPerBlock[i], !final)
                : new DownBlock2D(config, inCh, outCh, !final));
        }
        down_blocks = nn.ModuleList(downs.ToArray());
        mid_block = new UNetMidBlock2DCrossAttn(config, boc[^1], config.AttentionHeads[^1], config.TransformerLayersPerBlock[^1]);

        var rev = boc.Reverse().ToArray();
        var revHeads = config.AttentionHeads.Reverse().ToArray();
        var revLayers = config.TransformerLayersPerBlock.Reverse().ToArray();
        var ups = new List<UNetUpBlock>();
        outCh = rev[0];
        for (int i = 0; i < n; i++)
        {
            bool final = i == n - 1;
            int prevOut = outCh;
            outCh = rev[i];
            int inCh = rev[Math.Min(i + 1, n - 1)];
            ups.Add(config.UpBlockTypes[i] == "CrossAttnUpBlock2D"
                ? new CrossAttnUpBlock2D(config, inCh, prevOut, outCh, revHeads[i], revLayers[i], !final)
                : new UpBlock2D(config, inCh, prevOut, outCh, !final));
        }
        up_blocks = nn.ModuleList(ups.ToArray());
        conv_norm_out = new GroupNorm(config.NormNumGroups, boc[0], config.NormEps);
        conv_out = nn.Conv2d(boc[0], config.OutChannels, config.ConvOutKernel, padding: (config.ConvOutKernel - 1) / 2);
        RegisterComponents();

        var names = new List<string>();
        foreach (var (name, m) in named_modules())
            if (m is Layers.Attention a && name.EndsWith(".attn1", StringComparison.Ordinal)) { a.CaptureName = name; names.Add(name); }
        SelfAttentionLayers = names;
    }

    /// <summary>Loads <c>config.json</c> and the safetensors weights of a diffusers <c>unet/</c> folder.</summary>
    public static UNet2DConditionModel FromFolder(string folder)
    {
        var json = JsonConfig.Load(System.IO.Path.Combine(folder, "config.json"));
        var cfg = UNet2DConditionConfig.FromJson(json);
        json.WarnUnknownKeys(UNet2DConditionConfig.IgnoredKeys);
        var model = new UNet2DConditionModel(cfg);
        try
        {
            StateDictLoader.Load(model, ModelFiles.Weights(folder, "diffusion_pytorch_model"), nameof(UNet2DConditionModel));
        }
        catch { model.Dispose(); throw; }
        model.eval();
        return model;
    }

    /// <summary>Saves this UNet as a diffusers <c>unet/</c> folder: <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c> (F32 or F16), both written atomically.</summary>
    public void SaveFolder(string folder, Formats.SafeTensors.SafeTensorsDType dtype = Formats.SafeTensors.SafeTensorsDType.F32)
    {
        Directory.CreateDirectory(folder);
        Formats.SafeTensors.SafeTensorsWriter.Save(System.IO.Path.Combine(folder, "diffusion_pytorch_model.safetensors"), state_dict(), dtype);
        AtomicFile.WriteAllText(System.IO.Path.Combine(folder, "config.json"), Config.ToJson());
    }

    /// <summary>Predicts noise ε(x_t, t, c) for <paramref name="sample"/> [B, C, H, W], timestep(s) [] / [1] / [B] and text states [B, 77, D].</summary>
    public override Tensor forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates) => forward(sample, timestep, encoderHiddenStates);

    /// <summary>
    /// UNet forward. With an <see cref="IQueryKeySink"/> as <paramref name="sink"/>, each attn1 layer hands its Q and K to it and runs
    /// scaled_dot_product_attention; with an <see cref="IAttentionSink"/>, each attn1 layer computes softmax(QKᵀ/√d) explicitly and hands it over
    /// (paper Eq. 11 input; O((HW)²) memory); without, attention uses scaled_dot_product_attention. With <paramref name="intermediates"/>, copies of time_proj, time_embedding, conv_in,
    /// down_blocks.i, mid_block, up_blocks.i and conv_norm_out are stored under those names (caller disposes them).
    /// With <paramref name="decoder"/>, the output of every up block is handed over as it is computed, still part of the autograd graph
    /// (the decoder features of DiffEGG's edge generator G_φ, Alg 3).
    /// </summary>
    public Tensor forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates, IAttentionCapture? sink = null, IDictionary<string, Tensor>? intermediates = null,
        IDecoderFeatureSink? decoder = null)
    {
        if (sample.dim() != 4) throw new ArgumentException($"sample must be [B, C, H, W], got [{string.Join(",", sample.shape)}]");
        if (sample.shape[1] != Config.InChannels) throw new ArgumentException($"sample has {sample.shape[1]} channels, the UNet expects {Config.InChannels}");
        if (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[2] != Config.CrossAttentionDim)
            throw new ArgumentException($"encoder_hidden_states must be [B, L, {Config.CrossAttentionDim}], got [{string.Join(",", encoderHiddenStates.shape)}]");
        using var scope = torch.NewDisposeScope();
        void Keep(string name, Tensor t)
        {
            if (intermediates is null) return;
            if (intermediates.TryGetValue(name, out var old)) old.Dispose();
            intermediates[name] = t.detach().clone().MoveToOuterDisposeScope();
        }

        long b = sample.shape[0];
        int upFactor = 1 << (up_blocks.Count - 1);
        bool forwardUpsampleSize = sample.shape[2] % upFactor != 0 || sample.shape[3] % upFactor != 0;

        var t = timestep.to(sample.device).reshape(-1);
        if (t.shape[0] == 1 && b > 1) t = t.expand(b);
        else if (t.shape[0] != b) throw new ArgumentException($"timestep has {t.shape[0]} entries for a batch of {b}");
        var tEmb = time_proj.forward(t).to_type(sample.dtype);
        Keep("time_proj", tEmb);
        var emb = time_embedding.forward(tEmb);
        Keep("time_embedding", emb);

        if (Config.CenterInputSample) sample = 2 * sample - 1.0;
        var h = conv_in.forward(sample);
        Keep("conv_in", h);
        var skips = new List<Tensor> { h };
        for (int i = 0; i < down_blocks.Count; i++)
        {
            var (hidden, res) = down_blocks[i].forward(h, emb, encoderHiddenStates, sink);
            h = hidden;
            skips.AddRange(res);
            Keep($"down_blocks.{i}", h);
        }
        h = mid_block.forward(h, emb, encoderHiddenStates, sink);
        Keep("mid_block", h);
        for (int i = 0; i < up_blocks.Count; i++)
        {
            var block = up_blocks[i];
            bool final = i == up_blocks.Count - 1;
            int k = block.NumResnets;
            var res = skips.GetRange(skips.Count - k, k);
            skips.RemoveRange(skips.Count - k, k);
            long[]? size = !final && forwardUpsampleSize ? new[] { skips[^1].shape[2], skips[^1].shape[3] } : null;
            h = block.forward(h, res, emb, encoderHiddenStates, sink, size);
            Keep($"up_blocks.{i}", h);
            decoder?.AddUpBlock(i, h);
        }
        h = conv_norm_out.forward(h);
        Keep("conv_norm_out", h);
        h = conv_out.forward(nn.functional.silu(h));
        return h.MoveToOuterDisposeScope();
    }
}
