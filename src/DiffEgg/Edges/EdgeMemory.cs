using System.Globalization;
using System.Text.RegularExpressions;
using DiffEgg.Common;
using DiffEgg.Models;
using DiffEgg.Models.UNet;
using DiffEgg.Models.Vae;

namespace DiffEgg.Edges;

/// <summary>
/// Peak memory of <see cref="EdgePipeline.Run"/> for one image, estimated from the model configuration before the image starts, and the
/// memory the machine has. The estimate counts float32 tensors (4 bytes per value) of batch 1 at the attention grid of each UNet level:
/// <list type="bullet">
/// <item>UNet pass: the activations (a few feature maps at the input grid, <c>16·C₀·N₀</c>; attention is fused, so no N² tensor) and the
/// queries and keys each attn1 layer hands to <see cref="Attention.QueryKeyAttention"/> (<c>2·N_l·C_l</c> per layer), for up to three
/// passes at once (PeakKL keeps the previous and the best one);</item>
/// <item>streaming PeakKL / EdgeKL: the held queries and keys plus one block of attention rows, at most the block budget
/// (<see cref="EdgePipelineOptions.ChunkBytes"/>) but never less than one grid row;</item>
/// <item>VAE encoding (latent models): a few activations of the first encoder block at full image size (<c>6·C₀·H·W</c>), before the UNet.</item>
/// </list>
/// The model weights and the runtime are not included: they are what the process uses already (<see cref="ProcessBytes"/>).
/// Memory therefore grows linearly with the pixels (plus the constant block budget). docs/edge-quality.md compares the estimate with
/// peaks measured by <c>/usr/bin/time -v</c>.
/// </summary>
public static class EdgeMemory
{
    const long Float = 4;

    /// <summary>One attn1 layer: its UNet level (0 = the UNet input grid) and head count, in forward order.</summary>
    public static IReadOnlyList<(int Level, int Heads)> SelfAttentionLayers(UNet2DConditionConfig c)
    {
        var r = new List<(int, int)>();
        int n = c.BlockOutChannels.Length;
        for (int i = 0; i < n; i++)
            if (c.DownBlockTypes[i] == "CrossAttnDownBlock2D")
                for (int k = 0; k < c.LayersPerBlock * c.TransformerLayersPerBlock[i]; k++) r.Add((i, c.AttentionHeads[i]));
        for (int k = 0; k < c.TransformerLayersPerBlock[^1]; k++) r.Add((n - 1, c.AttentionHeads[^1]));
        for (int i = 0; i < n; i++)
            if (c.UpBlockTypes[i] == "CrossAttnUpBlock2D")
                for (int k = 0; k < (c.LayersPerBlock + 1) * c.TransformerLayersPerBlock[n - 1 - i]; k++) r.Add((n - 1 - i, c.AttentionHeads[n - 1 - i]));
        return r;
    }

    /// <summary>
    /// Estimated peak bytes that <see cref="EdgePipeline.Run"/> allocates for one image processed at <paramref name="width"/>×<paramref name="height"/>
    /// pixels with <paramref name="passes"/> UNet passes (timesteps) and blocks of attention rows within <paramref name="chunkBytes"/>,
    /// beyond what the process already uses.
    /// </summary>
    public static long EstimateBytes(UNet2DConditionConfig unet, AutoencoderKLConfig? vae, int width, int height, int passes, long chunkBytes = EdgeKL.DefaultChunkBytes)
    {
        int vaeFactor = vae is null ? 1 : 1 << (vae.BlockOutChannels.Length - 1);
        long lh = height / vaeFactor, lw = width / vaeFactor;
        long Side(long v, int level) => (v + (1L << level) - 1) >> level;
        long Tokens(int level) => Side(lh, level) * Side(lw, level);

        var layers = SelfAttentionLayers(unet);
        double vaePeak = vae is null ? 0 : 6.0 * vae.BlockOutChannels[0] * width * height * Float;
        if (layers.Count == 0) return (long)vaePeak;
        int top = layers.Min(l => l.Level);
        long H = Side(lh, top), W = Side(lw, top), n = H * W;

        double qkPass = layers.Sum(l => 2.0 * Tokens(l.Level) * unet.BlockOutChannels[l.Level]) * Float;
        double held = Math.Min(passes, 3) * qkPass;
        double forward = unet.BlockOutChannels[0] * 16.0 * Tokens(0) * Float + held;
        // one grid row of the block: QueryKeyAttention's temporaries (heads + 6 rows, or 7 when it goes head by head) and EdgeKL's (8 rows)
        int heads = layers.Max(l => l.Heads);
        bool perHead = Float * heads * W * n > 128L << 20;
        double perRow = (double)W * n * ((perHead ? 1 : heads) + 6 + 8) * Float;
        double block = Math.Max(perRow, Math.Min(chunkBytes, perRow * H));
        double streaming = held + block;
        return (long)Math.Max(Math.Max(forward, streaming), vaePeak);
    }

    /// <summary>The UNet and (when the folder has a vae/) VAE configurations of a diffusers model folder, read without loading any weights.</summary>
    public static (UNet2DConditionConfig Unet, AutoencoderKLConfig? Vae) ReadConfigs(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new DiffEggException($"{modelDir}: model folder not found");
        string unet = Path.Combine(modelDir, "unet", "config.json"), vae = Path.Combine(modelDir, "vae", "config.json");
        if (!File.Exists(unet)) throw new DiffEggException($"{modelDir}: not a diffusers model folder (no unet/config.json)");
        var u = UNet2DConditionConfig.FromJson(Models.Config.JsonConfig.Load(unet));
        var v = Directory.Exists(Path.Combine(modelDir, "vae")) ? AutoencoderKLConfig.FromJson(Models.Config.JsonConfig.Load(vae)) : null;
        return (u, v);
    }

    /// <summary><see cref="EstimateBytes(UNet2DConditionConfig, AutoencoderKLConfig?, int, int, int)"/> for a loaded model.</summary>
    public static long EstimateBytes(DiffusionModelFolder model, int width, int height, int passes, long chunkBytes = EdgeKL.DefaultChunkBytes) =>
        EstimateBytes(model.Unet.Config, model.Vae?.Config, width, height, passes, chunkBytes);

    /// <summary>
    /// Block budget of the streaming PeakKL / EdgeKL for a whole-process memory budget: an eighth of it, between 16 MiB and
    /// <see cref="EdgeKL.DefaultChunkBytes"/>; the default without a budget.
    /// </summary>
    public static long ChunkBytesFor(long? budget) =>
        budget is long b ? Math.Clamp(b / 8, 16L << 20, EdgeKL.DefaultChunkBytes) : EdgeKL.DefaultChunkBytes;

    /// <summary>Resident memory of this process now (bytes).</summary>
    public static long ProcessBytes()
    {
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        p.Refresh();
        return p.WorkingSet64;
    }

    /// <summary>
    /// Memory the machine can still give this process (bytes): Linux's MemAvailable (/proc/meminfo), capped by the container's limit
    /// as .NET sees it minus what this process uses; without /proc/meminfo, that limit alone.
    /// </summary>
    public static long AvailableBytes()
    {
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        long fromLimit = Math.Max(0, limit - ProcessBytes());
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                var m = Regex.Match(line, @"^MemAvailable:\s+(\d+)\s*kB");
                if (m.Success) return Math.Min(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * 1024, fromLimit);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return fromLimit;
    }

    /// <summary>Parses a memory size: a number with an optional unit B, KB, MB, GB, TB (powers of 1024; KiB… accepted too), e.g. "8GB", "512MB", "1.5G".</summary>
    public static long? TryParseSize(string s)
    {
        var m = Regex.Match(s.Trim(), @"^(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?$");
        if (!m.Success) return null;
        double v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        int shift = char.ToUpperInvariant(m.Groups[2].Value.FirstOrDefault()) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 };
        double bytes = v * Math.Pow(2, shift);
        return bytes >= 1 && bytes < long.MaxValue ? (long)bytes : null;
    }

    /// <summary>Bytes as "7.3 GB" / "512 MB" (powers of 1024).</summary>
    public static string Format(long bytes)
    {
        double b = bytes;
        if (b >= 1L << 30) return (b / (1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + " GB";
        if (b >= 1L << 20) return (b / (1L << 20)).ToString("0", CultureInfo.InvariantCulture) + " MB";
        return (b / 1024).ToString("0", CultureInfo.InvariantCulture) + " KB";
    }

    /// <summary>The largest processing size (long side, a multiple of <paramref name="multiple"/>) of a <paramref name="width"/>×<paramref name="height"/> image whose estimate fits in <paramref name="budget"/> bytes; 0 if none does.</summary>
    public static int LargestSizeWithin(DiffusionModelFolder model, int width, int height, int multiple, int passes, long budget) =>
        LargestSizeWithin(model.Unet.Config, model.Vae?.Config, width, height, multiple, passes, budget);

    /// <summary>As <see cref="LargestSizeWithin(DiffusionModelFolder, int, int, int, int, long)"/>, from the configurations.</summary>
    public static int LargestSizeWithin(UNet2DConditionConfig unet, AutoencoderKLConfig? vae, int width, int height, int multiple, int passes, long budget)
    {
        int best = 0;
        for (int size = multiple; size <= 16384; size += multiple)
        {
            var (pw, ph) = EdgePipeline.ProcessedSize(width, height, size, multiple);
            if (EstimateBytes(unet, vae, pw, ph, passes) > budget) break;
            best = Math.Max(pw, ph);
        }
        return best;
    }
}
