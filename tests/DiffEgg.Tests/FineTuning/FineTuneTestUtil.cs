using DiffEgg.Data;
using DiffEgg.Models;
using DiffEgg.Models.Schedulers;
using DiffEgg.Training;
using TorchSharp;

namespace DiffEgg.Tests.FineTuning;

static class FineTuneTestUtil
{
    /// <summary>A <see cref="MakeSet"/> folder: deconstructs to (data folder, edges folder); disposing it deletes both.</summary>
    public sealed class DataSet(TempDir dir, string edges) : IDisposable
    {
        public string Data => dir.Path;
        public string Edges => edges;
        public void Deconstruct(out string data, out string edges) { data = Data; edges = Edges; }
        public void Dispose() => dir.Dispose();
    }

    /// <summary>A fresh "tiny" pixel-space model folder (widths 16/32, attention at 1/2 resolution), float32, fixed seed.</summary>
    public static TempDir TinyModel(long seed = 7)
    {
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Tiny, seed);
        using var sched = DDPMScheduler.StableDiffusion15();
        using var g = new torch.Generator(3);
        using var nullEmb = torch.randn(new long[] { 1, 2, 16 }, generator: g);
        var dir = new TempDir("diffegg-ft-model", "model");
        PixelModelFolder.Save(dir, unet, nullEmb, sched, fp16: false);
        return dir;
    }

    /// <summary>
    /// <paramref name="count"/> size×size images (a bright rectangle on a gradient, shifted per image) in <c>DIR/images</c> and their ternary
    /// pseudo-edges in <c>DIR/edges</c>: edge (255) on the two pixel rings along the rectangle's border, uncertain (128) on the next ring
    /// on each side, interior (0) elsewhere; with <paramref name="interior"/> = false the interior is marked uncertain too.
    /// </summary>
    public static DataSet MakeSet(int count = 2, int size = 16, bool interior = true)
    {
        var dir = new TempDir("diffegg-ft-data");
        string images = Path.Combine(dir, "images"), edges = Path.Combine(dir, "edges");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(edges);
        int m = size / 4;
        for (int n = 0; n < count; n++)
        {
            int x0 = m + n % 3, y0 = m, x1 = size - m + n % 3 - 1, y1 = size - m - n % 2;
            var img = new RgbImage(size, size);
            var t = new byte[size * size];
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    bool inside = x >= x0 && x < x1 && y >= y0 && y < y1;
                    int i = 3 * (y * size + x);
                    img.Pixels[i] = (byte)(inside ? 220 : 8 * x);
                    img.Pixels[i + 1] = (byte)(inside ? 60 + 40 * n : 8 * y);
                    img.Pixels[i + 2] = (byte)(inside ? 90 : 140);
                    // Chebyshev distance to the border between inside and outside
                    int d = inside ? Math.Min(Math.Min(x - x0, x1 - 1 - x), Math.Min(y - y0, y1 - 1 - y))
                                   : Math.Max(Math.Max(x0 - 1 - x, x - x1), Math.Max(y0 - 1 - y, y - y1));
                    t[y * size + x] = d <= 0 ? (byte)255 : d == 1 || !interior ? (byte)128 : (byte)0;
                }
            ImageIO.WriteRgbPng(Path.Combine(images, $"s{n:D3}.png"), img);
            ImageIO.WriteGrayPng(Path.Combine(edges, $"s{n:D3}.ternary.png"), t, size, size);
        }
        return new DataSet(dir, edges);
    }
}
