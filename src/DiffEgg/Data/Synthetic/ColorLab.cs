namespace DiffEgg.Data.Synthetic;

/// <summary>CIE L*a*b* (D65) conversions for 8-bit sRGB and the CIE76 colour difference ΔE*ab.</summary>
public static class ColorLab
{
    const double Xn = 0.95047, Yn = 1.0, Zn = 1.08883;

    static double ToLinear(double c) => c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4);
    static double FromLinear(double c) => c <= 0.0031308 ? 12.92 * c : 1.055 * Math.Pow(c, 1 / 2.4) - 0.055;
    static double F(double t) => t > 216.0 / 24389 ? Math.Cbrt(t) : (24389.0 / 27 * t + 16) / 116;
    static double FInv(double f) => f * f * f > 216.0 / 24389 ? f * f * f : (116 * f - 16) / (24389.0 / 27);

    /// <summary>sRGB bytes → (L*, a*, b*) under D65.</summary>
    public static (double L, double A, double B) ToLab(byte r, byte g, byte b)
    {
        double rl = ToLinear(r / 255.0), gl = ToLinear(g / 255.0), bl = ToLinear(b / 255.0);
        double x = 0.4124564 * rl + 0.3575761 * gl + 0.1804375 * bl;
        double y = 0.2126729 * rl + 0.7151522 * gl + 0.0721750 * bl;
        double z = 0.0193339 * rl + 0.1191920 * gl + 0.9503041 * bl;
        double fx = F(x / Xn), fy = F(y / Yn), fz = F(z / Zn);
        return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz));
    }

    /// <summary>(L*, a*, b*) → sRGB as unclamped doubles in 0..255 (values outside mean out of gamut).</summary>
    public static (double R, double G, double B) FromLab(double l, double a, double b)
    {
        double fy = (l + 16) / 116, fx = fy + a / 500, fz = fy - b / 200;
        double x = Xn * FInv(fx), y = Yn * FInv(fy), z = Zn * FInv(fz);
        double rl = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z;
        double gl = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z;
        double bl = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z;
        return (255 * FromLinear(rl), 255 * FromLinear(gl), 255 * FromLinear(bl));
    }

    /// <summary>CIE76 colour difference ΔE*ab = Euclidean distance in L*a*b* between two sRGB colours.</summary>
    public static double DeltaE76(Rgb c1, Rgb c2)
    {
        var p = ToLab(c1.R, c1.G, c1.B);
        var q = ToLab(c2.R, c2.G, c2.B);
        double dl = p.L - q.L, da = p.A - q.A, db = p.B - q.B;
        return Math.Sqrt(dl * dl + da * da + db * db);
    }
}

/// <summary>An 8-bit sRGB colour.</summary>
public readonly record struct Rgb(byte R, byte G, byte B)
{
    public override string ToString() => $"#{R:x2}{G:x2}{B:x2}";
}
