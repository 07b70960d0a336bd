using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.Formats;
using DiffEgg.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Baseline;

/// <summary>Which graph cut turns the UNet's features into coarse masks.</summary>
public enum BaselineMethod { MaskCut, DiffCut }

/// <summary>Settings of the coarse-mask baseline.</summary>
public sealed record BaselineOptions
{
    public BaselineMethod Method { get; init; } = BaselineMethod.DiffCut;
    /// <summary>Timestep of the single UNet pass whose features are cut (low: the image is barely noised).</summary>
    public int Timestep { get; init; } = 10;
    /// <summary>Long side of the processed image (as <c>edges --size</c>); 0 = the image's own long side.</summary>
    public int Size { get; init; } = 64;
    /// <summary>Seed of the noise ε.</summary>
    public long Seed { get; init; }
    /// <summary>
    /// Subtract the image's mean feature before the cosine affinities (default). The attention outputs share a large common
    /// component: on a 64-px stress scene 99 % of the raw patch pairs have cosine ≥ 0.8, so no threshold τ separates anything.
    /// </summary>
    public bool Center { get; init; } = true;
    public MaskCutOptions MaskCut { get; init; } = new();
    public DiffCutOptions DiffCut { get; init; } = new();

    /// <summary>The method's name as the CLI and the results' provenance spell it.</summary>
    public static string Name(BaselineMethod m) => m == BaselineMethod.MaskCut ? "maskcut" : "diffcut";

    /// <summary>"maskcut" / "diffcut" → the method; null otherwise.</summary>
    public static BaselineMethod? Parse(string s) => s.Trim().ToLowerInvariant() switch
    {
        "maskcut" => BaselineMethod.MaskCut,
        "diffcut" => BaselineMethod.DiffCut,
        _ => null,
    };
}

/// <summary>
/// The built-in coarse instance masks for images alone: ONE UNet pass at a low timestep under null conditioning, the output of the
/// last self-attention layer (attn1, after <c>to_out</c>) of the decoder block whose grid is closest to 32×32 (the embedded model:
/// <c>up_blocks.1…attn1</c> at 32×32 for a 64-px image; SD 1.5 at 512 px: <c>up_blocks.2…attn1</c> at 32×32) as patch features, then
/// MaskCut or DiffCut (<see cref="NormalizedCut"/>). Why this layer: decoder self-attention outputs mix each patch with the patches
/// it attends to — the signal DiffEGG's edges come from — and a 32×32 grid keeps the dense eigen-problem at 1,024 nodes (≈ 0.1 s);
/// at larger processing sizes the grid is average-pooled back to at most <see cref="MaxGrid"/> × <see cref="MaxGrid"/>.
/// Masks are upsampled to the image by nearest neighbour (no CRF), category 1, score 1 − Ncut.
/// </summary>
public sealed class BaselineSegmenter : IDisposable
{
    readonly DiffusionModelFolder _model;
    readonly EdgePipeline _prepare;
    readonly Tensor _cond;
    readonly Models.Layers.Attention _layer;
    readonly int _level;

    /// <summary>Largest feature grid side: finer grids (processing sizes above the native one) are average-pooled to it.</summary>
    public const int MaxGrid = 32;

    public BaselineOptions Options { get; }
    /// <summary>Module path of the attention layer whose output is the feature map.</summary>
    public string LayerName { get; }

    public BaselineSegmenter(DiffusionModelFolder model, BaselineOptions options)
    {
        _model = model;
        Options = options;
        options.MaskCut.Validate();
        options.DiffCut.Validate();
        if (options.Timestep < 0 || options.Timestep >= model.Scheduler.NumTrainTimesteps)
            throw new InvalidOptionException(nameof(options.Timestep), $"{options.Timestep} is outside the model's schedule [0, {model.Scheduler.NumTrainTimesteps})");
        (LayerName, _level) = ChooseLayer(model.Unet);
        _layer = model.Unet.named_modules().Where(x => x.name == LayerName).Select(x => x.module).OfType<Models.Layers.Attention>().Single();
        _prepare = new EdgePipeline(model, new EdgePipelineOptions { Size = options.Size, Seed = options.Seed });
        _cond = model.EncodeEmptyPrompt().DetachFromDisposeScope();
    }

    /// <summary>
    /// The last attn1 layer of the up block whose grid at the model's native size is closest to 32×32 (ties: the finer grid), and that
    /// block's level (how many times the latent is halved there).
    /// </summary>
    public static (string Name, int Level) ChooseLayer(Models.UNet.UNet2DConditionModel unet)
    {
        int nUp = unet.Config.BlockOutChannels.Length;
        var candidates = new List<(string Name, int Level, int Grid)>();
        for (int i = 0; i < nUp; i++)
        {
            string prefix = $"up_blocks.{i}.";
            var last = unet.SelfAttentionLayers.LastOrDefault(n => n.StartsWith(prefix, StringComparison.Ordinal));
            if (last is null) continue;
            int level = nUp - 1 - i;
            candidates.Add((last, level, Math.Max(1, unet.Config.SampleSize >> level)));
        }
        if (candidates.Count == 0) throw new DiffEggException("the UNet has no self-attention layer in its decoder: the baseline needs one");
        var best = candidates.OrderBy(c => Math.Abs(c.Grid - 32)).ThenByDescending(c => c.Grid).First();
        return (best.Name, best.Level);
    }

    /// <summary>Processed size of an image (as <c>edges</c>).</summary>
    public (int Width, int Height) ProcessedSizeOf(int width, int height) => _prepare.ProcessedSizeOf(width, height);

    /// <summary>The feature map of one image: <c>[h·w, C]</c> row-major, its grid size.</summary>
    public (float[] Features, int Channels, int Height, int Width) Features(RgbImage image)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var input = _prepare.Prepare(image);
        var xt = _model.Scheduler.AddNoise(input.X0, input.Eps, Options.Timestep);
        var t = tensor(new long[] { Options.Timestep }, device: _model.Device);
        Tensor? captured = null;
        _layer.OutputTap = o => { captured?.Dispose(); captured = o[0].detach().to(CPU).to_type(ScalarType.Float32).contiguous().DetachFromDisposeScope(); };
        try { _model.Unet.forward(xt, t, _cond); }
        finally { _layer.OutputTap = null; }
        using var f = captured ?? throw new InvalidOperationException($"{LayerName} did not run");
        int lh = (int)input.X0.shape[2], lw = (int)input.X0.shape[3];
        int gh = lh, gw = lw;
        for (int k = 0; k < _level; k++) { gh = (gh + 1) / 2; gw = (gw + 1) / 2; }
        if (f.shape[0] != (long)gh * gw) throw new InvalidOperationException($"{LayerName}: {f.shape[0]} tokens, expected {gh}×{gw}");
        long c = f.shape[1];
        int factor = (Math.Max(gh, gw) + MaxGrid - 1) / MaxGrid;
        if (factor <= 1) return (f.data<float>().ToArray(), (int)c, gh, gw);
        // larger processing sizes: average-pool the patches to at most MaxGrid × MaxGrid (the dense eigen-problem grows with the cube)
        int ph = (gh + factor - 1) / factor, pw = (gw + factor - 1) / factor;
        var pooled = nn.functional.adaptive_avg_pool2d(f.t().reshape(1, c, gh, gw), new long[] { ph, pw }).reshape(c, (long)ph * pw).t().contiguous();
        return (pooled.data<float>().ToArray(), (int)c, ph, pw);
    }

    /// <summary>Coarse masks of one image as COCO results (category 1, score 1 − Ncut), at the image's own size.</summary>
    public List<CocoResult> Segment(RgbImage image, long imageId)
    {
        var (f, c, gh, gw) = Features(image);
        if (Options.Center) CenterRows(f, c);
        var masks = Options.Method == BaselineMethod.MaskCut
            ? NormalizedCut.MaskCut(f, c, gh, gw, Options.MaskCut)
            : NormalizedCut.DiffCut(f, c, gh, gw, Options.DiffCut);
        var results = new List<CocoResult>();
        foreach (var m in masks)
        {
            var px = Upsample(m.Mask, gw, gh, image.Width, image.Height);
            if (!px.Any(v => v != 0)) continue;
            results.Add(new CocoResult
            {
                ImageId = imageId, CategoryId = 1, Score = Math.Round(m.Score, 6),
                Segmentation = CocoSegmentation.FromRle(Rle.Encode(px, image.Height, image.Width)),
            });
        }
        return results;
    }

    /// <summary>Subtracts the mean row from every row of <paramref name="f"/> ([n, c] row-major), in place.</summary>
    public static void CenterRows(float[] f, int c)
    {
        int n = f.Length / c;
        var mean = new double[c];
        for (int i = 0; i < n; i++) for (int k = 0; k < c; k++) mean[k] += f[i * c + k];
        for (int k = 0; k < c; k++) mean[k] /= n;
        for (int i = 0; i < n; i++) for (int k = 0; k < c; k++) f[i * c + k] = (float)(f[i * c + k] - mean[k]);
    }

    /// <summary>Nearest-neighbour upsampling of a grid mask to width × height (pixel centre → cell).</summary>
    public static byte[] Upsample(bool[] grid, int gw, int gh, int width, int height)
    {
        var px = new byte[width * height];
        for (int y = 0; y < height; y++)
        {
            int cy = Math.Min(gh - 1, (int)((y + 0.5) * gh / height));
            for (int x = 0; x < width; x++)
            {
                int cx = Math.Min(gw - 1, (int)((x + 0.5) * gw / width));
                if (grid[cy * gw + cx]) px[y * width + x] = 1;
            }
        }
        return px;
    }

    public void Dispose()
    {
        _cond.Dispose();
        _prepare.Dispose();
    }
}
