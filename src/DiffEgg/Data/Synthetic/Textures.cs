namespace DiffEgg.Data.Synthetic;

/// <summary>The texture of a thing (object). Hard pairs always differ in this.</summary>
/// <summary>Thing textures: the default style draws the first four; Rings, Shaded, Marble and Grain are drawn only by the stress style (<see cref="Stress.StressSceneRenderer"/>).</summary>
public enum ThingTexture { Stripes, Dots, Checker, Noise, Rings, Shaded, Marble, Grain }

/// <summary>Lattice value noise: hashed values in [-1, 1] at integer lattice points, smoothstep-interpolated. Pure arithmetic (bit-exact).</summary>
public readonly struct ValueNoise
{
    readonly ulong _seed;
    readonly double _invCell;

    public ValueNoise(ulong seed, double cell)
    {
        if (!(cell > 0)) throw new ArgumentOutOfRangeException(nameof(cell), $"noise cell {cell} must be positive");
        _seed = seed;
        _invCell = 1.0 / cell;
    }

    double Lattice(long i, long j)
    {
        ulong h = Xoshiro256.Mix(_seed ^ Xoshiro256.Mix((ulong)i * 0x9E3779B97F4A7C15UL ^ (ulong)j * 0xC2B2AE3D27D4EB4FUL));
        return (h >> 11) * (2.0 / (1UL << 53)) - 1.0;
    }

    static double Smooth(double t) => t * t * (3 - 2 * t);

    /// <summary>Noise value in [-1, 1] at (x, y).</summary>
    public double Sample(double x, double y)
    {
        double gx = x * _invCell, gy = y * _invCell;
        double fx = Math.Floor(gx), fy = Math.Floor(gy);
        long i = (long)fx, j = (long)fy;
        double tx = Smooth(gx - fx), ty = Smooth(gy - fy);
        double a = Lattice(i, j), b = Lattice(i + 1, j), c = Lattice(i, j + 1), d = Lattice(i + 1, j + 1);
        double top = a + (b - a) * tx, bottom = c + (d - c) * tx;
        return top + (bottom - top) * ty;
    }
}

/// <summary>A thing texture with its parameters; evaluated in the object's own (rotated) frame so it moves with the object.</summary>
public sealed class TextureSpec
{
    public ThingTexture Kind { get; }
    /// <summary>Period of stripes, dot grid or checker cell size (pixels); noise cell size for <see cref="ThingTexture.Noise"/>.</summary>
    public double Period { get; }
    /// <summary>Lightness modulation amplitude in 8-bit units (added to all three channels).</summary>
    public double Amplitude { get; }
    readonly ValueNoise _noise;

    public TextureSpec(ThingTexture kind, double period, double amplitude, ulong noiseSeed)
    {
        Kind = kind; Period = period; Amplitude = amplitude;
        _noise = new ValueNoise(noiseSeed, kind == ThingTexture.Noise ? period : 1);
    }

    /// <summary>Draws a texture of the given kind with scale factor k = size/64.</summary>
    public static TextureSpec Random(ThingTexture kind, Xoshiro256 rng, double k)
    {
        double period = kind switch
        {
            ThingTexture.Stripes => rng.Range(4, 7),
            ThingTexture.Dots => rng.Range(4.5, 7),
            ThingTexture.Checker => rng.Range(2.5, 4.5),
            _ => rng.Range(1.6, 3.0),
        } * k;
        double amp = rng.Range(18, 34);
        return new TextureSpec(kind, period, amp, rng.NextULong());
    }

    static double Frac(double x) => x - Math.Floor(x);

    /// <summary>Modulation in [-1, 1] at object-frame coordinates (u, v).</summary>
    public double Modulation(double u, double v)
    {
        switch (Kind)
        {
            case ThingTexture.Stripes:
                return Frac(u / Period) < 0.5 ? 1 : -1;
            case ThingTexture.Dots:
            {
                double du = Frac(u / Period) - 0.5, dv = Frac(v / Period) - 0.5;
                return du * du + dv * dv < 0.09 ? 1 : -0.4;
            }
            case ThingTexture.Checker:
                return (((long)Math.Floor(u / Period) + (long)Math.Floor(v / Period)) & 1) == 0 ? 1 : -1;
            default:
                return Math.Clamp(1.6 * _noise.Sample(u, v), -1, 1);
        }
    }
}

/// <summary>A stuff (background region) kind: the stuff categories of the synthetic scenes.</summary>
public enum StuffKind { Smooth, Grain, Hatch }

/// <summary>The texture of one background region, evaluated in image coordinates.</summary>
public sealed class StuffTexture
{
    public StuffKind Kind { get; }
    public Rgb BaseColor { get; }
    readonly ValueNoise _noise;
    readonly double _amp, _period, _gx, _gy;
    readonly (double C, double S) _dir;

    public StuffTexture(StuffKind kind, Xoshiro256 rng, double k)
    {
        Kind = kind;
        BaseColor = new Rgb((byte)rng.NextInt(60, 195), (byte)rng.NextInt(60, 195), (byte)rng.NextInt(60, 195));
        _dir = rng.UnitVector();
        switch (kind)
        {
            case StuffKind.Smooth:
                _noise = new ValueNoise(rng.NextULong(), 12 * k); _amp = rng.Range(10, 18); _period = 0;
                _gx = rng.Range(-0.4, 0.4) / k; _gy = rng.Range(-0.4, 0.4) / k;
                break;
            case StuffKind.Grain:
                _noise = new ValueNoise(rng.NextULong(), 1.3 * k); _amp = rng.Range(16, 26); _period = 0;
                break;
            default:
                _noise = new ValueNoise(rng.NextULong(), 8 * k); _amp = rng.Range(14, 22); _period = rng.Range(3, 4.5) * k;
                break;
        }
    }

    /// <summary>Signed lightness offset (8-bit units) at image point (x, y).</summary>
    public double Offset(double x, double y)
    {
        switch (Kind)
        {
            case StuffKind.Smooth:
                return _amp * _noise.Sample(x, y) + _gx * x + _gy * y;
            case StuffKind.Grain:
                return _amp * _noise.Sample(x, y);
            default:
            {
                double t = (_dir.C * x + _dir.S * y) / _period;
                double f = t - Math.Floor(t);
                return (f < 0.3 ? _amp : -0.45 * _amp) + 4 * _noise.Sample(x, y);
            }
        }
    }
}
