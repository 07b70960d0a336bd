using DiffEgg.Common;
using DiffEgg.Data;

namespace DiffEgg.Tests;

public class ImageIOTests
{
    [Fact]
    public void RgbAndGrayPngRoundTripExactly()
    {
        using var dir = new TempDir("diffegg-img");
        var img = new RgbImage(5, 3);
        for (int i = 0; i < img.Pixels.Length; i++) img.Pixels[i] = (byte)(i * 17 % 256);
        ImageIO.WriteRgbPng(Path.Combine(dir, "a.png"), img);
        var back = ImageIO.ReadRgb(Path.Combine(dir, "a.png"));
        Assert.Equal((5, 3), (back.Width, back.Height));
        Assert.Equal(img.Pixels, back.Pixels);

        var gray = Enumerable.Range(0, 12).Select(i => (byte)(i == 5 ? 255 : i)).ToArray();
        ImageIO.WriteGrayPng(Path.Combine(dir, "g.png"), gray, 4, 3);
        var g = ImageIO.ReadGray(Path.Combine(dir, "g.png"), out int w, out int h, out bool wasGray);
        Assert.True(wasGray);
        Assert.Equal((4, 3), (w, h));
        Assert.Equal(gray, g);
    }

    [Fact]
    public void CorruptAndMissingFilesGiveClearErrors()
    {
        using var dir = new TempDir("diffegg-img");
        string bad = Path.Combine(dir, "bad.png");
        File.WriteAllBytes(bad, new byte[] { 1, 2, 3, 4, 5 });
        var e = Assert.Throws<DiffEggException>(() => ImageIO.ReadRgb(bad));
        Assert.Contains("bad.png", e.Message);
        var m = Assert.Throws<DiffEggException>(() => ImageIO.ReadRgb(Path.Combine(dir, "missing.png")));
        Assert.Contains("missing.png", m.Message);
    }
}
