using DiffEgg.Refinement;

namespace DiffEgg.Tests.Refinement;

/// <summary>Constructed scenes with known answers for the refinement tests.</summary>
internal static class Scenes
{
    public static byte[] Rect(int w, int h, int y0, int y1, int x0, int x1)
    {
        var m = new byte[w * h];
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) m[y * w + x] = 1;
        return m;
    }

    public static byte[] Or(byte[] a, byte[] b) => a.Zip(b, (p, q) => (byte)(p | q)).ToArray();

    /// <summary>Draws the 1-px outline of the rectangle [y0..y1]×[x0..x1] with value v.</summary>
    public static void Ring(float[] e, int w, int y0, int y1, int x0, int x1, float v = 1f)
    {
        for (int x = x0; x <= x1; x++) { e[y0 * w + x] = v; e[y1 * w + x] = v; }
        for (int y = y0; y <= y1; y++) { e[y * w + x0] = v; e[y * w + x1] = v; }
    }

    public static void VLine(float[] e, int w, int x, int y0, int y1, float v = 1f)
    {
        for (int y = y0; y <= y1; y++) e[y * w + x] = v;
    }

    public static double IoU(byte[] a, byte[] b)
    {
        long i = 0, u = 0;
        for (int k = 0; k < a.Length; k++) { if (a[k] != 0 && b[k] != 0) i++; if (a[k] != 0 || b[k] != 0) u++; }
        return u == 0 ? 0 : (double)i / u;
    }
}
