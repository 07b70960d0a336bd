using DiffEgg.Common;
using DiffEgg.Data.Synthetic;

namespace DiffEgg.Demo;

/// <summary>Rates of the weak semantic mask simulation.</summary>
public sealed record WeakSemanticOptions
{
    /// <summary>Probability, per pass, that a pixel on a class boundary takes the class of a random 4-neighbour of another class (erodes one class, dilates the other).</summary>
    public double BoundaryNoise { get; init; } = 0.4;
    /// <summary>Number of passes (each reads the previous pass's map), so boundaries move by up to this many pixels.</summary>
    public int Passes { get; init; } = 2;

    /// <summary>Checks the fields; throws <see cref="ArgumentException"/> naming the field.</summary>
    public void Validate()
    {
        if (!(BoundaryNoise >= 0 && BoundaryNoise <= 1)) throw new InvalidOptionException(nameof(BoundaryNoise), $"must be in [0,1], got {BoundaryNoise}");
        if (Passes < 0 || Passes > 16) throw new InvalidOptionException(nameof(Passes), $"must be in 0..16, got {Passes}");
    }
}

/// <summary>
/// Simulates the weak semantic masks that DiffEGG turns into panoptic pseudo-labels (Alg 4 for WPS): the ground-truth class map,
/// without instance information, with random erosion/dilation at class boundaries. Deterministic in the seed; only class ids of the input occur.
/// </summary>
public static class WeakSemanticSimulator
{
    /// <summary>A noisy copy of a class-id map (row-major): boundary pixels take a neighbouring class with probability BoundaryNoise, Passes times.</summary>
    public static byte[] Simulate(byte[] classMap, int width, int height, ulong seed, WeakSemanticOptions? options = null)
    {
        var o = options ?? new WeakSemanticOptions();
        o.Validate();
        if (classMap.Length != width * height) throw new ArgumentException($"class map has {classMap.Length} pixels, expected {width}x{height}");
        var rng = new Xoshiro256(seed);
        var cur = (byte[])classMap.Clone();
        Span<byte> other = stackalloc byte[4];
        for (int pass = 0; pass < o.Passes; pass++)
        {
            var next = (byte[])cur.Clone();
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    int i = y * width + x, n = 0;
                    byte v = cur[i];
                    if (x > 0 && cur[i - 1] != v) other[n++] = cur[i - 1];
                    if (x + 1 < width && cur[i + 1] != v) other[n++] = cur[i + 1];
                    if (y > 0 && cur[i - width] != v) other[n++] = cur[i - width];
                    if (y + 1 < height && cur[i + width] != v) other[n++] = cur[i + width];
                    if (n == 0) continue;
                    if (rng.Chance(o.BoundaryNoise)) next[i] = other[rng.NextInt(n)];
                }
            cur = next;
        }
        return cur;
    }
}
