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
/// <item>UNet pass: at each attn1 layer with <c>heads</c> heads over N tokens, the scores and the softmax probabilities
/// (<c>2·heads·N²</c>) live together, on top of the accumulator's per-resolution sums of the levels already seen (Eq 11, <c>N_l²</c> each);</item>
/// <item>accumulation (Eq 12): the sums, the running total and the bilinear upsampling of a lower level (<c>3.5·N²</c> at the top grid);</item>
/// <item>PeakKL (Alg 1): the current map, its copy, the previous and the best map (<c>4·N²</c>); from the third pass on, the previous and
/// the best map (<c>2·N²</c>) stay alive during the UNet pass;</item>
/// <item>VAE encoding (latent models): a few activations of the first encoder block at full image size (<c>6·C₀·H·W</c>), before the UNet.</item>
/// </list>
/// The model weights and the runtime are not included: they are what the process uses already (<see cref="ProcessBytes"/>).
/// docs/edge-quality.md compares the estimate with peaks measured by <c>/usr/bin/time -v</c>.
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
                for (int k = 0; k < c.LayersPerBlock * c.TransformerLayersPerBlock[i]; k++) r.Add((i, c.AttentionHeadDim[i]));
        for (int k = 0; k < c.TransformerLayersPerBlock[^1]; k++) r.Add((n - 1, c.AttentionHeadDim[^1]));
        for (int i = 0; i < n; i++)
            if (c.UpBlockTypes[i] == "CrossAttnUpBlock2D")
                for (int k = 0; k < (c.LayersPerBlock + 1) * c.TransformerLayersPerBlock[n - 1 - i]; k++) r.Add((n - 1 - i, c.AttentionHeadDim[n - 1 - i]));
        return r;
    }

    /// <summary>
    /// Estimated peak bytes that <see cref="EdgePipeline.Run"/> allocates for one image processed at <paramref name="width"/>×<paramref name="height"/>
    /// pixels with <paramref name="passes"/> UNet passes (timesteps), beyond what the process already uses.
    /// </summary>
    public static long EstimateBytes(UNet2DConditionConfig unet, AutoencoderKLConfig? vae, int width, int height, int passes)
    {
        int vaeFactor = vae is null ? 1 : 1 << (vae.BlockOutChannels.Length - 1);
        long lh = height / vaeFactor, lw = width / vaeFactor;
        long Tokens(int level) => ((lh + (1L << level) - 1) >> level) * ((lw + (1L << level) - 1) >> level);

        var layers = SelfAttentionLayers(unet);
        if (layers.Count == 0) return 0;
        int top = layers.Min(l => l.Level);
        double n2 = Sq(Tokens(top));
        double held = passes >= 3 ? 2 * n2 : passes == 2 ? n2 : 0;

        // UNet pass: scores + probabilities of the layer on top of the sums of the levels seen so far
        double forward = 0;
        var seen = new HashSet<int>();
        double sums = 0;
        foreach (var (level, heads) in layers)
        {
            double t2 = Sq(Tokens(level));
            forward = Math.Max(forward, sums + 2.0 * heads * t2);
            if (seen.Add(level)) sums += t2;
        }
        forward += unet.BlockOutChannels[0] * 16.0 * Tokens(0); // other activations: a few feature maps at the input grid
        double accumulate = sums + 3.5 * n2;
        double peakKl = 4 * n2;
        double unetPeak = Math.Max(Math.Max(forward, accumulate) + held, peakKl);
        double vaePeak = vae is null ? 0 : 6.0 * vae.BlockOutChannels[0] * width * height;
        return (long)(Float * Math.Max(unetPeak, vaePeak));
    }

    static double Sq(long x) => (double)x * x;

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
    public static long EstimateBytes(DiffusionModelFolder model, int width, int height, int passes) =>
        EstimateBytes(model.Unet.Config, model.Vae?.Config, width, height, passes);

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
