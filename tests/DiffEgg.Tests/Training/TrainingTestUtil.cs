using DiffEgg.Data;

namespace DiffEgg.Tests.Training;

/// <summary>Trainer tests change torch's global thread count: they run alone, not in parallel with other collections.</summary>
[CollectionDefinition("TorchThreads", DisableParallelization = true)]
public sealed class TorchThreadsCollection { }

static class TrainingTestUtil
{
    /// <summary>Writes <paramref name="count"/> deterministic 16×16 RGB PNGs (two-colour rectangles on a gradient) into a new temp folder's images/ (dispose it).</summary>
    public static TempDir MakeImageFolder(int count = 4, int size = 16)
    {
        var dir = new TempDir("diffegg-train");
        Directory.CreateDirectory(Path.Combine(dir, "images"));
        for (int n = 0; n < count; n++)
        {
            var img = new RgbImage(size, size);
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    bool inside = x >= 2 + n && x < 10 + n && y >= 3 && y < 12 - n;
                    int i = 3 * (y * size + x);
                    img.Pixels[i] = (byte)(inside ? 200 : 10 * x);
                    img.Pixels[i + 1] = (byte)(inside ? 40 + 30 * n : 10 * y);
                    img.Pixels[i + 2] = (byte)(inside ? 90 : 120);
                }
            ImageIO.WriteRgbPng(Path.Combine(dir, "images", $"{n:D3}.png"), img);
        }
        return dir;
    }
}
