using System.Globalization;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning;

/// <summary>Share of each ternary class over all pseudo-edge pixels of a training set.</summary>
public readonly record struct TernaryFractions(double Edge, double Interior, double Uncertain)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"edge {100 * Edge:F1} %, interior {100 * Interior:F1} %, uncertain {100 * Uncertain:F1} %");
}

/// <summary>
/// The fine-tuning set (Alg 3): each image with its ternary pseudo-edges (<c>stem.ternary.png</c> of a <c>diffegg edges</c> output folder:
/// grey 255 edge, 0 interior, 128 uncertain), both centre-cropped to a square and resized to S×S (image bilinear, pseudo-edges nearest),
/// held in memory as uint8 [N, 3, S, S] and int8 [N, S, S] (1 / 0 / −1).
/// </summary>
public sealed class FineTuneData : IDisposable
{
    /// <summary>
    /// How to obtain pseudo-edges with an interior class, quoted when a training set has none (Alg 2's μ − σ lies below the minimum of
    /// EdgeKL maps, so the default ternary maps have no interior pixels). One constant so the option's name can be adjusted in one place.
    /// </summary>
    public const string NoInteriorHint =
        "recompute the pseudo-edges with a ternary rule that yields interior pixels: diffegg edges --ternary ... (see docs/finetuning.md, 'Pseudo-edges')";

    readonly Tensor _pixels;
    readonly Tensor _targets;

    public int Count { get; }
    public int Size { get; }
    public IReadOnlyList<string> ImageFiles { get; }
    public IReadOnlyList<string> EdgeFiles { get; }
    public TernaryFractions Fractions { get; }

    FineTuneData(Tensor pixels, Tensor targets, IReadOnlyList<string> images, IReadOnlyList<string> edges, int size, TernaryFractions f)
    {
        _pixels = pixels; _targets = targets; ImageFiles = images; EdgeFiles = edges; Count = images.Count; Size = size; Fractions = f;
    }

    /// <summary>
    /// Reads every image of <paramref name="dataDir"/> (or its <c>images/</c> subfolder, as written by <c>diffegg synth</c>) and its
    /// <c>stem.ternary.png</c> in <paramref name="edgesDir"/>. Refuses, naming the file: a missing pseudo-edge map, one whose size differs from
    /// its image, one that is not ternary (grey values other than 0/128/255), and a set without interior or without edge pixels.
    /// </summary>
    public static FineTuneData Load(string dataDir, string edgesDir, int size, Action<int, int>? progress = null)
    {
        if (size < 8) throw new ArgumentException($"--size must be at least 8, got {size}");
        if (!Directory.Exists(dataDir)) throw new DiffEggException($"{dataDir}: data folder not found");
        if (!Directory.Exists(edgesDir)) throw new DiffEggException($"{edgesDir}: pseudo-edge folder not found (the --out folder of diffegg edges)");
        string sub = Path.Combine(dataDir, "images");
        string root = Directory.Exists(sub) && ImageIO.ListImages(sub).Count > 0 ? sub : dataDir;
        var files = ImageIO.ListImages(root);
        if (files.Count == 0) throw new DiffEggException($"{dataDir}: no images (.png/.jpg/...) found");
        var stems = files.GroupBy(f => Path.GetFileNameWithoutExtension(f)).FirstOrDefault(g => g.Count() > 1);
        if (stems is not null) throw new DiffEggException($"{root}: two images share the stem '{stems.Key}' ({string.Join(", ", stems)}); their pseudo-edges would be the same file");

        int plane = size * size;
        var px = new byte[(long)files.Count * 3 * plane];
        var tg = new sbyte[(long)files.Count * plane];
        var edgeFiles = new List<string>();
        long edge = 0, interior = 0, uncertain = 0;
        for (int i = 0; i < files.Count; i++)
        {
            string stem = Path.GetFileNameWithoutExtension(files[i]);
            string ep = Path.Combine(edgesDir, stem + ".ternary.png");
            if (!File.Exists(ep)) throw new DiffEggException($"{ep}: pseudo-edges of {files[i]} not found (run diffegg edges on the training images with --out {edgesDir})");
            var img = ImageIO.ReadRgb(files[i]);
            var grey = ImageIO.ReadGray(ep, out int ew, out int eh, out _);
            if (ew != img.Width || eh != img.Height)
                throw new DiffEggException($"{ep}: pseudo-edges are {ew}×{eh} but the image {files[i]} is {img.Width}×{img.Height}");
            foreach (byte g in grey)
                if (g != TernaryEdges.EdgeGray && g != TernaryEdges.InteriorGray && g != TernaryEdges.UncertainGray)
                    throw new DiffEggException($"{ep}: not a ternary map (grey value {g}; expected {TernaryEdges.EdgeGray} edge, {TernaryEdges.InteriorGray} interior, {TernaryEdges.UncertainGray} uncertain)");
            edgeFiles.Add(ep);

            var rgb = ImageIO.Resize(TrainingImages.CenterSquare(img), size, size).Pixels;
            long o = (long)i * 3 * plane;
            for (int p = 0; p < plane; p++)
            {
                px[o + p] = rgb[3 * p];
                px[o + plane + p] = rgb[3 * p + 1];
                px[o + 2 * plane + p] = rgb[3 * p + 2];
            }
            // the same centre square, nearest-neighbour resized
            int s = Math.Min(ew, eh), x0 = (ew - s) / 2, y0 = (eh - s) / 2;
            long to = (long)i * plane;
            for (int y = 0; y < size; y++)
            {
                int sy = y0 + Math.Min(s - 1, (int)((y + 0.5) * s / size));
                for (int x = 0; x < size; x++)
                {
                    int sx = x0 + Math.Min(s - 1, (int)((x + 0.5) * s / size));
                    byte g = grey[sy * ew + sx];
                    sbyte c = g == TernaryEdges.EdgeGray ? TernaryEdges.Edge : g == TernaryEdges.InteriorGray ? TernaryEdges.Interior : TernaryEdges.Uncertain;
                    tg[to + y * size + x] = c;
                    if (c == TernaryEdges.Edge) edge++; else if (c == TernaryEdges.Interior) interior++; else uncertain++;
                }
            }
            progress?.Invoke(i + 1, files.Count);
        }
        double total = (double)files.Count * plane;
        var fractions = new TernaryFractions(edge / total, interior / total, uncertain / total);
        if (interior == 0)
            throw new DiffEggException($"{edgesDir}: the pseudo-edges have no interior pixels ({fractions}); the masked Dice loss would only ever see edges. To fix: {NoInteriorHint}");
        if (edge == 0)
            throw new DiffEggException($"{edgesDir}: the pseudo-edges have no edge pixels ({fractions}); nothing to learn");
        TorchRuntime.EnsureLoaded();
        var pixels = torch.tensor(px, new long[] { files.Count, 3, size, size });
        var targets = torch.tensor(tg, new long[] { files.Count, size, size });
        return new FineTuneData(pixels, targets, files, edgeFiles, size, fractions);
    }

    /// <summary>Draws a batch: image indices uniformly with replacement and a horizontal flip with probability ½ each, all from <paramref name="g"/>.</summary>
    public (long[] Index, bool[] Flip) Draw(int batch, Generator g)
    {
        using var scope = torch.NewDisposeScope();
        var idx = torch.randint(Count, new long[] { batch }, dtype: ScalarType.Int64, generator: g).data<long>().ToArray();
        var flip = torch.rand(new long[] { batch }, generator: g).data<float>().Select(v => v < 0.5f).ToArray();
        return (idx, flip);
    }

    /// <summary>Images in [−1, 1], float32 [B, 3, S, S], flipped where drawn.</summary>
    public Tensor Images(long[] index, bool[] flip) => Select(_pixels, index, flip, t => t.to_type(ScalarType.Float32) / 127.5 - 1.0);

    /// <summary>Ternary targets 1 / 0 / −1, float32 [B, S, S], flipped where drawn.</summary>
    public Tensor Targets(long[] index, bool[] flip) => Select(_targets, index, flip, t => t.to_type(ScalarType.Float32));

    /// <summary>All images in [−1, 1] (unflipped or all flipped), float32 [N, 3, S, S] — for precomputing latents.</summary>
    public Tensor AllImages(bool flipped)
    {
        using var scope = torch.NewDisposeScope();
        var f = _pixels.to_type(ScalarType.Float32) / 127.5 - 1.0;
        if (flipped) f = f.flip(3);
        return f.contiguous().MoveToOuterDisposeScope();
    }

    static Tensor Select(Tensor source, long[] index, bool[] flip, Func<Tensor, Tensor> convert)
    {
        using var scope = torch.NewDisposeScope();
        var x = convert(source.index_select(0, torch.tensor(index)));
        var f = torch.tensor(flip).reshape(new long[] { flip.Length }.Concat(Enumerable.Repeat(1L, (int)x.dim() - 1)).ToArray());
        x = torch.where(f, x.flip(-1), x);
        return x.contiguous().MoveToOuterDisposeScope();
    }

    public void Dispose() { _pixels.Dispose(); _targets.Dispose(); }
}
