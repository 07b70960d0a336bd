using DiffEgg.Refinement;
using DiffEgg.Edges;

namespace DiffEgg.Tests.Edges;

public class ThinningTests
{
    static bool[] Draw(int w, int h, Func<int, int, bool> inside)
    {
        var b = new bool[w * h];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) b[y * w + x] = inside(x, y);
        return b;
    }

    [Fact]
    public void ThickRingBecomesAOnePixelClosedCurve()
    {
        // a ring 4-5 px thick around (16, 16): the skeleton is a closed curve inside the ring, one pixel wide, still one piece
        int w = 32, h = 32;
        var ring = Draw(w, h, (x, y) => { double r = Math.Sqrt((x - 16) * (x - 16) + (y - 16) * (y - 16)); return r >= 8 && r <= 12; });
        var s = Thinning.ZhangSuen(ring, w, h);
        for (int i = 0; i < s.Length; i++) if (s[i]) Assert.True(ring[i]);
        Assert.Equal(1, ConnectedComponents.Label(s, w, h, 8, 1).Count);
        // closed: the inside of the ring stays cut off from the outside
        var background = s.Select(v => !v).ToArray();
        Assert.Equal(2, ConnectedComponents.Label(background, w, h, 4, 1).Count);
        // one pixel wide: no 2×2 block of skeleton pixels, and far fewer pixels than the ring
        for (int y = 0; y + 1 < h; y++)
            for (int x = 0; x + 1 < w; x++)
                Assert.False(s[y * w + x] && s[y * w + x + 1] && s[(y + 1) * w + x] && s[(y + 1) * w + x + 1], $"2×2 block at ({x},{y})");
        Assert.True(s.Count(v => v) < ring.Count(v => v) / 3, $"{s.Count(v => v)} of {ring.Count(v => v)}");
    }

    [Fact]
    public void OnePixelLinesAndPiecesAreKept()
    {
        int w = 20, h = 12;
        // a horizontal line and a separate diagonal line: already one pixel wide
        var lines = Draw(w, h, (x, y) => (y == 3 && x >= 2 && x <= 17) || (x >= 4 && x <= 10 && y == x - 1 + 2 && y >= 6));
        var s = Thinning.ZhangSuen(lines, w, h);
        Assert.Equal(ConnectedComponents.Label(lines, w, h, 8, 1).Count, ConnectedComponents.Label(s, w, h, 8, 1).Count);
        // a straight one-pixel line loses at most its end pixels
        Assert.True(Enumerable.Range(3, 14).All(x => s[3 * w + x]));
        Assert.Throws<ArgumentException>(() => Thinning.ZhangSuen(new bool[5], 2, 2));
    }
}
