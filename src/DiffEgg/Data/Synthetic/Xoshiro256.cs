namespace DiffEgg.Data.Synthetic;

/// <summary>
/// xoshiro256** pseudo-random generator (Blackman &amp; Vigna), seeded through SplitMix64.
/// Implemented here so that a seed gives the same stream on every .NET version and platform
/// (System.Random(seed) is only stable for its legacy algorithm).
/// </summary>
public sealed class Xoshiro256
{
    ulong _s0, _s1, _s2, _s3;

    /// <summary>Seeds the four state words from SplitMix64(seed).</summary>
    public Xoshiro256(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x); _s1 = SplitMix64(ref x); _s2 = SplitMix64(ref x); _s3 = SplitMix64(ref x);
    }

    /// <summary>One SplitMix64 step: advances <paramref name="state"/> and returns the mixed output.</summary>
    public static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Stateless 64-bit mix of a value (the SplitMix64 finaliser); used for hashing lattice points.</summary>
    public static ulong Mix(ulong v)
    {
        ulong s = v;
        return SplitMix64(ref s);
    }

    /// <summary>Next 64 random bits (xoshiro256**).</summary>
    public ulong NextULong()
    {
        ulong result = RotL(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotL(_s3, 45);
        return result;
    }

    static ulong RotL(ulong x, int k) => (x << k) | (x >> (64 - k));

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform double in [lo, hi).</summary>
    public double Range(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n) without modulo bias (rejection).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), $"n = {n} must be positive");
        ulong un = (ulong)n;
        ulong limit = ulong.MaxValue - ulong.MaxValue % un;
        ulong r;
        do r = NextULong(); while (r >= limit);
        return (int)(r % un);
    }

    /// <summary>Uniform integer in [lo, hi] (both inclusive).</summary>
    public int NextInt(int lo, int hi) => lo + NextInt(hi - lo + 1);

    /// <summary>True with probability p.</summary>
    public bool Chance(double p) => NextDouble() < p;

    /// <summary>A uniformly random unit vector, drawn by rejection in the unit disc (no trigonometry, so it is bit-exact everywhere).</summary>
    public (double C, double S) UnitVector()
    {
        while (true)
        {
            double x = Range(-1, 1), y = Range(-1, 1);
            double r2 = x * x + y * y;
            if (r2 > 1e-4 && r2 <= 1) { double r = Math.Sqrt(r2); return (x / r, y / r); }
        }
    }
}
