using DiffEgg.Common;
using DiffEgg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Training;

/// <summary>The training images held in memory as uint8 [N, 3, S, S]: each file centre-cropped to a square and resized (bilinear) to S.</summary>
public sealed class TrainingImages : IDisposable
{
    readonly Tensor _pixels;
    public int Count { get; }
    public int Size { get; }
    public IReadOnlyList<string> Files { get; }

    TrainingImages(Tensor pixels, IReadOnlyList<string> files, int size) { _pixels = pixels; Files = files; Count = files.Count; Size = size; }

    /// <summary>Reads every image of <paramref name="dir"/> (or of its <c>images/</c> subfolder, as written by <c>diffegg synth</c>); unreadable files throw naming the file.</summary>
    public static TrainingImages Load(string dir, int size, Action<int, int>? progress = null)
    {
        if (size < 8) throw new ArgumentException($"--size must be at least 8, got {size}");
        if (!Directory.Exists(dir)) throw new DiffEggException($"{dir}: data folder not found");
        string sub = Path.Combine(dir, "images");
        string root = Directory.Exists(sub) && ImageIO.ListImages(sub).Count > 0 ? sub : dir;
        var files = ImageIO.ListImages(root);
        if (files.Count == 0) throw new DiffEggException($"{dir}: no images (.png/.jpg/...) found");
        int plane = size * size;
        var bytes = new byte[(long)files.Count * 3 * plane];
        for (int i = 0; i < files.Count; i++)
        {
            var img = ImageIO.ReadRgb(files[i]);
            img = ImageIO.Resize(CenterSquare(img), size, size);
            var px = img.Pixels;
            long o = (long)i * 3 * plane;
            for (int p = 0; p < plane; p++)
            {
                bytes[o + p] = px[3 * p];
                bytes[o + plane + p] = px[3 * p + 1];
                bytes[o + 2 * plane + p] = px[3 * p + 2];
            }
            progress?.Invoke(i + 1, files.Count);
        }
        TorchRuntime.EnsureLoaded();
        var t = torch.tensor(bytes, new long[] { files.Count, 3, size, size });
        return new TrainingImages(t, files, size);
    }

    /// <summary>The centred square crop (side = the shorter side) of <paramref name="img"/>.</summary>
    internal static RgbImage CenterSquare(RgbImage img)
    {
        if (img.Width == img.Height) return img;
        int s = Math.Min(img.Width, img.Height), x0 = (img.Width - s) / 2, y0 = (img.Height - s) / 2;
        var o = new RgbImage(s, s);
        for (int y = 0; y < s; y++)
            Array.Copy(img.Pixels, ((y + y0) * img.Width + x0) * 3, o.Pixels, y * s * 3, s * 3);
        return o;
    }

    /// <summary>
    /// A training batch in [-1, 1], float32 [B, 3, crop, crop]: images drawn uniformly with replacement, a uniformly placed crop each
    /// (crop = S: the whole image), each flipped horizontally with probability ½; all randomness from <paramref name="g"/>.
    /// </summary>
    public Tensor Batch(int batch, int crop, Generator g)
    {
        if (crop < 1 || crop > Size) throw new ArgumentException($"--crop must lie in [1, {Size}], got {crop}");
        using var scope = torch.NewDisposeScope();
        var idx = torch.randint(Count, new long[] { batch }, dtype: ScalarType.Int64, generator: g);
        var x = _pixels.index_select(0, idx);
        if (crop < Size)
        {
            var off = torch.randint(Size - crop + 1, new long[] { batch, 2 }, dtype: ScalarType.Int64, generator: g);
            var offs = off.data<long>().ToArray();
            var parts = new Tensor[batch];
            for (int b = 0; b < batch; b++) parts[b] = x[b].narrow(1, offs[2 * b], crop).narrow(2, offs[2 * b + 1], crop);
            x = torch.stack(parts);
        }
        var f = x.to_type(ScalarType.Float32) / 127.5 - 1.0;
        var flip = (torch.rand(new long[] { batch }, generator: g) < 0.5).reshape(batch, 1, 1, 1);
        f = torch.where(flip, f.flip(3), f);
        return f.contiguous().MoveToOuterDisposeScope();
    }

    public void Dispose() => _pixels.Dispose();
}
