namespace DiffEgg.Edges;

/// <summary>
/// Zhang–Suen thinning (Zhang &amp; Suen 1984, "A fast parallel algorithm for thinning digital patterns"): peels a binary pattern in two
/// alternating sub-iterations until only an 8-connected skeleton one pixel wide is left; a pattern that is already one pixel wide is kept,
/// and the number of 8-connected pieces does not change. The image border counts as background.
/// </summary>
public static class Thinning
{
    /// <summary>The skeleton of <paramref name="pattern"/> (row-major, <paramref name="width"/> × <paramref name="height"/>); the input is not changed.</summary>
    public static bool[] ZhangSuen(ReadOnlySpan<bool> pattern, int width, int height)
    {
        if (pattern.Length != width * height) throw new ArgumentException($"pattern has {pattern.Length} pixels, expected {width}×{height}");
        var b = pattern.ToArray();
        var remove = new List<int>();
        Span<bool> p = stackalloc bool[8];
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int step = 0; step < 2; step++)
            {
                remove.Clear();
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                    {
                        int i = y * width + x;
                        if (!b[i]) continue;
                        // neighbours P2..P9, clockwise from north
                        p[0] = At(b, x, y - 1, width, height); p[1] = At(b, x + 1, y - 1, width, height);
                        p[2] = At(b, x + 1, y, width, height); p[3] = At(b, x + 1, y + 1, width, height);
                        p[4] = At(b, x, y + 1, width, height); p[5] = At(b, x - 1, y + 1, width, height);
                        p[6] = At(b, x - 1, y, width, height); p[7] = At(b, x - 1, y - 1, width, height);
                        int n = 0, transitions = 0;
                        for (int k = 0; k < 8; k++)
                        {
                            if (p[k]) n++;
                            if (!p[k] && p[(k + 1) % 8]) transitions++;
                        }
                        if (n < 2 || n > 6 || transitions != 1) continue;
                        bool keep = step == 0
                            ? (p[0] && p[2] && p[4]) || (p[2] && p[4] && p[6])
                            : (p[0] && p[2] && p[6]) || (p[0] && p[4] && p[6]);
                        if (!keep) remove.Add(i);
                    }
                foreach (int i in remove) b[i] = false;
                if (remove.Count > 0) changed = true;
            }
        }
        return b;
    }

    static bool At(bool[] b, int x, int y, int w, int h) => (uint)x < (uint)w && (uint)y < (uint)h && b[y * w + x];
}
