using DiffEgg.Data;

namespace DiffEgg.Tests.Walkthrough;

/// <summary>
/// Small photo-like test images generated in the test (no downloads): coin-like discs — dome shading lit from the top left, a relief
/// pattern, a raised rim with a dark outer edge, bronze or silver tint — some of them touching, on a dark cloth background (brightness
/// gradient, weave texture), with Gaussian sensor noise and anti-aliased outlines. The ground truth is known exactly.
/// </summary>
internal static class CoinPhotos
{
    /// <summary>One coin: centre, radius (px), base tone (0..255), bronze or silver, orientation of its relief.</summary>
    public sealed record Coin(double X, double Y, double R, double Tone, bool Bronze, double Phase);

    /// <summary>A generated photo: the image, one ground-truth mask per coin (0/1, row-major) and the index pairs of touching coins.</summary>
    public sealed record Photo(string Name, RgbImage Image, IReadOnlyList<byte[]> Masks, IReadOnlyList<(int A, int B)> TouchingPairs);

    /// <summary>The two photos of the walk-through test, 128×96 each: image "a" with two touching pairs and two single coins, "b" with one touching pair and two single coins.</summary>
    public static IReadOnlyList<Photo> Two() => new[]
    {
        Render("a", 128, 96, new[]
        {
            new Coin(29, 30, 14, 185, false, 0.3), new Coin(57, 30, 14, 170, true, 1.9),
            new Coin(97, 33, 16, 190, false, 2.6),
            new Coin(34, 70, 13, 175, true, 0.9), new Coin(60, 71, 13, 195, false, 1.2),
            new Coin(100, 74, 12, 180, true, 2.2),
        }, new[] { (0, 1), (3, 4) }, seed: 1),
        Render("b", 128, 96, new[]
        {
            new Coin(26, 46, 15, 180, true, 0.5), new Coin(55, 47, 14, 190, false, 2.8),
            new Coin(94, 27, 14, 175, false, 1.4),
            new Coin(95, 69, 13, 185, true, 0.1),
        }, new[] { (0, 1) }, seed: 2),
    };

    /// <summary>Renders the coins (4×4 supersampling; a sample belongs to the coin with the smallest distance/radius) and their masks (pixel centres).</summary>
    public static Photo Render(string name, int w, int h, IReadOnlyList<Coin> coins, IReadOnlyList<(int, int)> touching, int seed)
    {
        var rng = new Random(seed);
        var px = new byte[w * h * 3];
        var masks = coins.Select(_ => new byte[w * h]).ToList();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double r = 0, g = 0, b = 0;
                for (int sy = 0; sy < 4; sy++)
                    for (int sx = 0; sx < 4; sx++)
                    {
                        var (cr, cg, cb) = Sample(x + (sx + 0.5) / 4, y + (sy + 0.5) / 4, w, h, coins);
                        r += cr; g += cg; b += cb;
                    }
                double noise = Gauss(rng) * 5;
                int i = y * w + x;
                px[3 * i] = Clamp(r / 16 + noise);
                px[3 * i + 1] = Clamp(g / 16 + noise);
                px[3 * i + 2] = Clamp(b / 16 + noise);
                int owner = Owner(x + 0.5, y + 0.5, coins);
                if (owner >= 0) masks[owner][i] = 1;
            }
        return new Photo(name, new RgbImage(w, h, px), masks, touching);
    }

    static int Owner(double x, double y, IReadOnlyList<Coin> coins)
    {
        int best = -1;
        double bestT = 1;
        for (int k = 0; k < coins.Count; k++)
        {
            double t = Math.Sqrt((x - coins[k].X) * (x - coins[k].X) + (y - coins[k].Y) * (y - coins[k].Y)) / coins[k].R;
            if (t < bestT) { bestT = t; best = k; }
        }
        return best;
    }

    static (double R, double G, double B) Sample(double x, double y, int w, int h, IReadOnlyList<Coin> coins)
    {
        int k = Owner(x, y, coins);
        if (k < 0)
        {
            // dark cloth: brighter towards the top, a fine weave
            double v = 38 + 22 * (1 - y / h) + 7 * Math.Sin(1.3 * x + 0.4 * y) * Math.Sin(1.1 * y - 0.3 * x);
            return (v * 0.95, v, v * 1.1);
        }
        var c = coins[k];
        double dx = (x - c.X) / c.R, dy = (y - c.Y) / c.R, t = Math.Sqrt(dx * dx + dy * dy);
        // dome normal lit from the top left
        double nz = Math.Sqrt(Math.Max(0, 1 - 0.6 * t * t));
        double light = Math.Clamp((-0.5 * dx * 0.6 - 0.5 * dy * 0.6 + 0.7 * nz) / 0.9, 0, 1);
        double val = c.Tone * (0.7 + 0.3 * light);
        // relief inside, a raised rim, a dark outer edge
        double u = (x - c.X) * Math.Cos(c.Phase) + (y - c.Y) * Math.Sin(c.Phase), v2 = -(x - c.X) * Math.Sin(c.Phase) + (y - c.Y) * Math.Cos(c.Phase);
        if (t < 0.75) val += 22 * Math.Sin(0.8 * u) * Math.Cos(0.55 * v2 + 0.7 * Math.Sin(0.3 * u));
        else if (t < 0.88) val += 18;
        else val *= 0.55 + 0.4 * (1 - t) / 0.12;
        return c.Bronze ? (val, val * 0.82, val * 0.62) : (val * 0.97, val, val * 1.02);
    }

    static byte Clamp(double v) => (byte)Math.Clamp((int)Math.Round(v), 0, 255);

    static double Gauss(Random rng)
    {
        double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
