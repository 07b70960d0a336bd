using DiffEgg.Common;
using DiffEgg.Models.Config;
using DiffEgg.Models.UNet;

namespace DiffEgg.Training;

/// <summary>Pixel-space UNet configurations for training a base model from scratch (in/out channels 3).</summary>
public static class BaseModelConfigs
{
    /// <summary>
    /// "small": widths (32, 64, 64), one ResNet per down level (two per up level), the first level a DownBlock2D without attention so self-attention
    /// sits at 1/2 and 1/4 of the input resolution (plus the mid block), 4 heads (diffusers' <c>attention_head_dim</c> = head count),
    /// cross_attention_dim 32, 8 norm groups.
    /// </summary>
    public static UNet2DConditionConfig Small => Pixel(new[] { 32, 64, 64 }, heads: 4, crossDim: 32, groups: 8);

    /// <summary>"medium": as <see cref="Small"/> with widths (64, 128, 128), cross_attention_dim 64, 16 norm groups.</summary>
    public static UNet2DConditionConfig Medium => Pixel(new[] { 64, 128, 128 }, heads: 4, crossDim: 64, groups: 16);

    /// <summary>"tiny" (tests only): widths (16, 32), a DownBlock2D then a CrossAttnDownBlock2D, 2 heads, cross_attention_dim 16, 4 groups.</summary>
    public static UNet2DConditionConfig Tiny => Pixel(new[] { 16, 32 }, heads: 2, crossDim: 16, groups: 4);

    static UNet2DConditionConfig Pixel(int[] widths, int heads, int crossDim, int groups)
    {
        int n = widths.Length;
        var down = Enumerable.Range(0, n).Select(i => i == 0 ? "DownBlock2D" : "CrossAttnDownBlock2D").ToArray();
        var up = Enumerable.Range(0, n).Select(i => i == n - 1 ? "UpBlock2D" : "CrossAttnUpBlock2D").ToArray();
        return new UNet2DConditionConfig
        {
            InChannels = 3,
            OutChannels = 3,
            SampleSize = 64,
            DownBlockTypes = down,
            UpBlockTypes = up,
            BlockOutChannels = widths,
            LayersPerBlock = 1,
            NormNumGroups = groups,
            CrossAttentionDim = crossDim,
            AttentionHeads = Enumerable.Repeat(heads, n).ToArray(),
            TransformerLayersPerBlock = Enumerable.Repeat(1, n).ToArray(),
        };
    }

    /// <summary>Resolves <c>--config</c>: "small", "medium", "tiny", or a path to a UNet <c>config.json</c> (must have in/out channels 3).</summary>
    public static UNet2DConditionConfig Resolve(string nameOrPath)
    {
        switch (nameOrPath)
        {
            case "small": return Small;
            case "medium": return Medium;
            case "tiny": return Tiny;
        }
        if (!File.Exists(nameOrPath)) throw new DiffEggException($"--config '{nameOrPath}': neither small, medium, tiny nor an existing config.json file");
        var cfg = UNet2DConditionConfig.FromJson(JsonConfig.Load(nameOrPath));
        if (cfg.InChannels != 3 || cfg.OutChannels != 3)
            throw new DiffEggException($"{nameOrPath}: key 'in_channels'/'out_channels' = {cfg.InChannels}/{cfg.OutChannels}; a pixel-space base model needs 3/3");
        return cfg;
    }
}
