using DiffEgg.Common;
using DiffEgg.Models.Config;

namespace DiffEgg.Models.UNet;

/// <summary>
/// The subset of diffusers' <c>UNet2DConditionModel</c> config that DiffEgg implements (SD 1.x/2.x style). Values outside it are rejected
/// by <see cref="FromJson"/> with an error naming the config file and key.
/// </summary>
public sealed record UNet2DConditionConfig
{
    public int InChannels { get; init; } = 4;
    public int OutChannels { get; init; } = 4;
    public int SampleSize { get; init; } = 64;
    public bool CenterInputSample { get; init; }
    public bool FlipSinToCos { get; init; } = true;
    public int FreqShift { get; init; }
    public string[] DownBlockTypes { get; init; } = { "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D" };
    public string[] UpBlockTypes { get; init; } = { "UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D" };
    public int[] BlockOutChannels { get; init; } = { 320, 640, 1280, 1280 };
    public int LayersPerBlock { get; init; } = 2;
    public int DownsamplePadding { get; init; } = 1;
    public double MidBlockScaleFactor { get; init; } = 1.0;
    public double ResnetOutScaleFactor { get; init; } = 1.0;
    public int NormNumGroups { get; init; } = 32;
    public double NormEps { get; init; } = 1e-5;
    public int CrossAttentionDim { get; init; } = 768;
    /// <summary>Number of attention heads per down block; each level's head dim is channels / heads. Read from diffusers' <c>attention_head_dim</c> (see <see cref="FromJson"/>).</summary>
    public int[] AttentionHeads { get; init; } = { 8, 8, 8, 8 };
    public int[] TransformerLayersPerBlock { get; init; } = { 1, 1, 1, 1 };
    public bool UseLinearProjection { get; init; }
    public bool UpcastAttention { get; init; }
    public int ConvInKernel { get; init; } = 3;
    public int ConvOutKernel { get; init; } = 3;
    public int? TimeEmbeddingDim { get; init; }

    public int TimeEmbedDim => TimeEmbeddingDim ?? BlockOutChannels[0] * 4;

    /// <summary>SD 1.5's UNet config (diffusers' runwayml/stable-diffusion-v1-5 unet/config.json values).</summary>
    public static UNet2DConditionConfig StableDiffusion15 => new();

    /// <summary>Reads <c>unet/config.json</c>; any value DiffEgg does not implement throws naming the file and key.</summary>
    /// <summary>Keys of diffusers' config that do not change this inference (not warned about as unknown).</summary>
    public static readonly string[] IgnoredKeys = { "dropout", "addition_embed_type_num_heads" /* used only with addition_embed_type, which must be null */ };

    public static UNet2DConditionConfig FromJson(JsonConfig c)
    {
        c.RequireNullOr("_class_name", "UNet2DConditionModel");
        c.RequireNullOr("act_fn", "silu");
        c.RequireNullOr("addition_embed_type");
        c.RequireNullOr("class_embed_type");
        c.RequireNullOr("num_class_embeds");
        c.RequireNullOr("encoder_hid_dim");
        c.RequireNullOr("encoder_hid_dim_type");
        c.RequireNullOr("time_cond_proj_dim");
        c.RequireNullOr("timestep_post_act");
        c.RequireNullOr("time_embedding_act_fn");
        c.RequireNullOr("time_embedding_type", "positional");
        c.RequireNullOr("resnet_time_scale_shift", "default");
        c.RequireNullOr("resnet_skip_time_act", false);
        c.RequireNullOr("cross_attention_norm");
        c.RequireNullOr("class_embeddings_concat", false);
        c.RequireNullOr("dual_cross_attention", false);
        c.RequireNullOr("attention_type", "default");
        c.RequireNullOr("mid_block_type", "UNetMidBlock2DCrossAttn");
        c.RequireNullOr("mid_block_only_cross_attention", false);
        c.RequireNullOr("reverse_transformer_layers_per_block");
        c.RequireNullOr("addition_time_embed_dim");
        c.RequireNullOr("projection_class_embeddings_input_dim");
        if (c.Has("num_attention_heads"))
            throw c.Unsupported("num_attention_heads", c.Int("num_attention_heads"), "null; diffusers reads the head count from attention_head_dim");
        if (c.IsArray("only_cross_attention") ? c.BoolArray("only_cross_attention").Any(x => x) : c.Bool("only_cross_attention", false))
            throw c.Unsupported("only_cross_attention", true, "false");
        var down = c.StringArray("down_block_types", new UNet2DConditionConfig().DownBlockTypes);
        var up = c.StringArray("up_block_types", new UNet2DConditionConfig().UpBlockTypes);
        foreach (var t in down)
            if (t is not ("CrossAttnDownBlock2D" or "DownBlock2D")) throw c.Unsupported("down_block_types", down, "CrossAttnDownBlock2D, DownBlock2D");
        foreach (var t in up)
            if (t is not ("CrossAttnUpBlock2D" or "UpBlock2D")) throw c.Unsupported("up_block_types", up, "CrossAttnUpBlock2D, UpBlock2D");
        var boc = c.IntArray("block_out_channels", new[] { 320, 640, 1280, 1280 });
        if (boc.Length != down.Length) throw c.Error("block_out_channels", $"has {boc.Length} entries but down_block_types has {down.Length}");
        if (up.Length != down.Length) throw c.Error("up_block_types", $"has {up.Length} entries but down_block_types has {down.Length}");
        if (c.IsArray("layers_per_block")) throw c.Unsupported("layers_per_block", c.IntArray("layers_per_block"), "a single integer");
        if (c.IsArray("cross_attention_dim")) throw c.Unsupported("cross_attention_dim", c.IntArray("cross_attention_dim"), "a single integer");
        if (c.IsExplicitNull("norm_num_groups")) throw c.Unsupported("norm_num_groups", null, "an integer");
        // diffusers' misnomer: SD 1.x configs store the NUMBER of heads under attention_head_dim (diffusers itself maps it to num_attention_heads)
        var heads = c.IntOrIntList("attention_head_dim", down.Length, 8);
        var tl = c.IntOrIntList("transformer_layers_per_block", down.Length, 1);
        int groups = c.Int("norm_num_groups", 32);
        foreach (var ch in boc)
        {
            if (ch % groups != 0) throw c.Error("norm_num_groups", $"{groups} does not divide block_out_channels entry {ch}");
        }
        for (int i = 0; i < boc.Length; i++)
            if (boc[i] % heads[i] != 0) throw c.Error("attention_head_dim", $"{heads[i]} heads do not divide {boc[i]} channels (block {i})");
        int kin = c.Int("conv_in_kernel", 3), kout = c.Int("conv_out_kernel", 3);
        if (kin % 2 == 0 || kin < 1) throw c.Unsupported("conv_in_kernel", kin, "an odd kernel size");
        if (kout % 2 == 0 || kout < 1) throw c.Unsupported("conv_out_kernel", kout, "an odd kernel size");
        return new UNet2DConditionConfig
        {
            InChannels = c.Int("in_channels", 4),
            OutChannels = c.Int("out_channels", 4),
            SampleSize = c.Int("sample_size", 64),
            CenterInputSample = c.Bool("center_input_sample", false),
            FlipSinToCos = c.Bool("flip_sin_to_cos", true),
            FreqShift = c.Int("freq_shift", 0),
            DownBlockTypes = down,
            UpBlockTypes = up,
            BlockOutChannels = boc,
            LayersPerBlock = c.Int("layers_per_block", 2),
            DownsamplePadding = c.Int("downsample_padding", 1),
            MidBlockScaleFactor = c.Double("mid_block_scale_factor", 1.0),
            ResnetOutScaleFactor = c.Double("resnet_out_scale_factor", 1.0),
            NormNumGroups = groups,
            NormEps = c.Double("norm_eps", 1e-5),
            CrossAttentionDim = c.Int("cross_attention_dim", 1280),
            AttentionHeads = heads,
            TransformerLayersPerBlock = tl,
            UseLinearProjection = c.Bool("use_linear_projection", false),
            UpcastAttention = c.Bool("upcast_attention", false),
            ConvInKernel = kin,
            ConvOutKernel = kout,
            TimeEmbeddingDim = c.IntOrNull("time_embedding_dim"),
        };
    }

    /// <summary>Writes this config as a diffusers <c>unet/config.json</c> (the keys <see cref="FromJson"/> reads; round-trips exactly).</summary>
    public string ToJson()
    {
        var d = new Dictionary<string, object?>
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["act_fn"] = "silu",
            ["attention_head_dim"] = AttentionHeads.Distinct().Count() == 1 ? AttentionHeads[0] : AttentionHeads,
            ["block_out_channels"] = BlockOutChannels,
            ["center_input_sample"] = CenterInputSample,
            ["conv_in_kernel"] = ConvInKernel,
            ["conv_out_kernel"] = ConvOutKernel,
            ["cross_attention_dim"] = CrossAttentionDim,
            ["down_block_types"] = DownBlockTypes,
            ["downsample_padding"] = DownsamplePadding,
            ["flip_sin_to_cos"] = FlipSinToCos,
            ["freq_shift"] = FreqShift,
            ["in_channels"] = InChannels,
            ["layers_per_block"] = LayersPerBlock,
            ["mid_block_scale_factor"] = MidBlockScaleFactor,
            ["mid_block_type"] = "UNetMidBlock2DCrossAttn",
            ["norm_eps"] = NormEps,
            ["norm_num_groups"] = NormNumGroups,
            ["out_channels"] = OutChannels,
            ["resnet_out_scale_factor"] = ResnetOutScaleFactor,
            ["sample_size"] = SampleSize,
            ["time_embedding_dim"] = TimeEmbeddingDim,
            ["transformer_layers_per_block"] = TransformerLayersPerBlock.Distinct().Count() == 1 ? TransformerLayersPerBlock[0] : TransformerLayersPerBlock,
            ["up_block_types"] = UpBlockTypes,
            ["upcast_attention"] = UpcastAttention,
            ["use_linear_projection"] = UseLinearProjection,
        };
        return System.Text.Json.JsonSerializer.Serialize(d, new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }
}
