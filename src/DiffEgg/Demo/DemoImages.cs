using DiffEgg.Data;

namespace DiffEgg.Demo;

/// <summary>Small RGB renderings for the demo report: mask overlays, edge heat maps, ternary maps, panoptic colourings.</summary>
public static class DemoImages
{
    /// <summary>A distinct colour for index k (golden-ratio hue steps, fixed saturation/value).</summary>
    public static (byte R, byte G, byte B) Palette(int k)
    {
        double hue = (k * 0.6180339887498949 + 0.12) % 1.0;
        return Hsv(hue, 0.75, 0.95);
    }

    static (byte, byte, byte) Hsv(double h, double s, double v)
    {
        double c = v * s, hp = h * 6, x = c * (1 - Math.Abs(hp % 2 - 1)), m = v - c;
        var (r, g, b) = hp switch { < 1 => (c, x, 0.0), < 2 => (x, c, 0.0), < 3 => (0.0, c, x), < 4 => (0.0, x, c), < 5 => (x, 0.0, c), _ => (c, 0.0, x) };
        return ((byte)Math.Round(255 * (r + m)), (byte)Math.Round(255 * (g + m)), (byte)Math.Round(255 * (b + m)));
    }

    /// <summary>The image with each mask tinted in its palette colour (later masks on top) and its boundary drawn in full colour.</summary>
    public static RgbImage Overlay(RgbImage img, IReadOnlyList<byte[]> masks)
    {
        int w = img.Width, h = img.Height;
        var px = new byte[w * h * 3];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(img.Pixels[i] * 0.55); // darken so colours read well
        for (int k = 0; k < masks.Count; k++)
        {
            var m = masks[k];
            var (r, g, b) = Palette(k);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int i = y * w + x;
                    if (m[i] == 0) continue;
                    bool edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || m[i - 1] == 0 || m[i + 1] == 0 || m[i - w] == 0 || m[i + w] == 0;
                    double a = edge ? 1.0 : 0.5;
                    px[3 * i] = (byte)Math.Round(a * r + (1 - a) * img.Pixels[3 * i]);
                    px[3 * i + 1] = (byte)Math.Round(a * g + (1 - a) * img.Pixels[3 * i + 1]);
                    px[3 * i + 2] = (byte)Math.Round(a * b + (1 - a) * img.Pixels[3 * i + 2]);
                }
        }
        return new RgbImage(w, h, px);
    }

    /// <summary>A heat map of a non-negative map scaled by its maximum (black → purple → orange → light yellow).</summary>
    public static RgbImage Heat(float[] values, int w, int h)
    {
        float max = 0;
        foreach (var v in values) if (float.IsFinite(v) && v > max) max = v;
        var stops = new (double T, double R, double G, double B)[] { (0, 0, 0, 4), (0.3, 100, 20, 130), (0.65, 240, 100, 40), (1, 252, 250, 190) };
        var px = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++)
        {
            double t = max > 0 && float.IsFinite(values[i]) ? Math.Clamp(values[i] / max, 0, 1) : 0;
            int s = 1;
            while (s < stops.Length - 1 && t > stops[s].T) s++;
            var (t0, r0, g0, b0) = stops[s - 1];
            var (t1, r1, g1, b1) = stops[s];
            double u = (t - t0) / (t1 - t0);
            px[3 * i] = (byte)Math.Round(r0 + u * (r1 - r0));
            px[3 * i + 1] = (byte)Math.Round(g0 + u * (g1 - g0));
            px[3 * i + 2] = (byte)Math.Round(b0 + u * (b1 - b0));
        }
        return new RgbImage(w, h, px);
    }

    /// <summary>Ternary classes (Alg 2): edge white, uncertain orange, interior dark blue.</summary>
    public static RgbImage Ternary(sbyte[] t, int w, int h)
    {
        var px = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++)
        {
            var (r, g, b) = t[i] switch { 1 => (255, 255, 255), -1 => (230, 140, 40), _ => (20, 24, 60) };
            px[3 * i] = (byte)r; px[3 * i + 1] = (byte)g; px[3 * i + 2] = (byte)b;
        }
        return new RgbImage(w, h, px);
    }

    /// <summary>Class colours: things (ids 1..4) saturated, stuff (5..) muted, 255 (ignore) black.</summary>
    public static (byte R, byte G, byte B) ClassColor(int c, bool thing) => c == 255 ? ((byte)0, (byte)0, (byte)0)
        : thing ? Hsv((c * 0.23) % 1.0, 0.55, 0.9) : Hsv((c * 0.31 + 0.5) % 1.0, 0.25, 0.55);

    /// <summary>A class-id map in class colours.</summary>
    public static RgbImage Classes(byte[] cls, int w, int h, IReadOnlyDictionary<int, bool> isThing)
    {
        var px = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++)
        {
            var (r, g, b) = ClassColor(cls[i], isThing.GetValueOrDefault(cls[i]));
            px[3 * i] = r; px[3 * i + 1] = g; px[3 * i + 2] = b;
        }
        return new RgbImage(w, h, px);
    }

    /// <summary>A panoptic segment map: things one palette colour per segment, stuff its muted class colour, void black; segment borders darkened.</summary>
    public static RgbImage Panoptic(int[] ids, int w, int h, IReadOnlyDictionary<int, int> categoryOfSegment, IReadOnlyDictionary<int, bool> isThing)
    {
        var thingIndex = new Dictionary<int, int>();
        foreach (var id in categoryOfSegment.Keys.OrderBy(x => x))
            if (isThing.GetValueOrDefault(categoryOfSegment[id])) thingIndex[id] = thingIndex.Count;
        var px = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x, id = ids[i];
                (byte R, byte G, byte B) c = id == 0 || !categoryOfSegment.TryGetValue(id, out int cat) ? ((byte)0, (byte)0, (byte)0)
                    : thingIndex.TryGetValue(id, out int k) ? Palette(k) : ClassColor(cat, false);
                bool border = (x + 1 < w && ids[i + 1] != id) || (y + 1 < h && ids[i + w] != id);
                double f = border ? 0.35 : 1.0;
                px[3 * i] = (byte)(c.R * f); px[3 * i + 1] = (byte)(c.G * f); px[3 * i + 2] = (byte)(c.B * f);
            }
        return new RgbImage(w, h, px);
    }
}
