using DiffEgg.Common;
using DiffEgg.Data;

namespace DiffEgg.Tests;

/// <summary>Real photos as ImageIO reads them (issue 11): EXIF orientation, greyscale, alpha, 16-bit PNGs, CMYK and unsupported JPEGs. Files are written byte by byte by <see cref="TestImages"/>.</summary>
public class PhotoReadTests
{
    static RgbImage Read(TempDir dir, string name, byte[] bytes, out ImageIO.ImageReadInfo info)
    {
        File.WriteAllBytes(dir.File(name), bytes);
        return ImageIO.ReadRgb(dir.File(name), out info);
    }

    static (byte R, byte G, byte B) Px(RgbImage img, int x, int y)
    {
        int i = 3 * (y * img.Width + x);
        return (img.Pixels[i], img.Pixels[i + 1], img.Pixels[i + 2]);
    }

    static readonly (byte, byte, byte) Red = (200, 40, 40), Green = (40, 200, 40), Grey = (128, 128, 128);

    /// <summary>
    /// A 24×8 stored JPEG (RGB samples, Adobe transform 0 = no colour conversion, so colours are exact): the stored top-left 8×8 block
    /// is red, the stored top-right block green, the rest grey. For each EXIF orientation the corners of the displayed image must be
    /// where TIFF 6.0's table puts the stored top-left and top-right corners.
    /// </summary>
    [Theory]
    //          orientation, displayed corner of stored top-left, of stored top-right (TL, TR, BR, BL)
    [InlineData(1, "TL", "TR")]
    [InlineData(2, "TR", "TL")]
    [InlineData(3, "BR", "BL")]
    [InlineData(4, "BL", "BR")]
    [InlineData(5, "TL", "BL")]
    [InlineData(6, "TR", "BR")]
    [InlineData(7, "BR", "TR")]
    [InlineData(8, "BL", "TL")]
    public void ExifOrientation_IsApplied(int orientation, string storedTopLeftAt, string storedTopRightAt)
    {
        using var dir = new TempDir();
        int Sample(int c, int bx, int by)
        {
            var (r, g, b) = by == 0 && bx == 0 ? Red : by == 0 && bx == 2 ? Green : Grey;
            return c == 0 ? r : c == 1 ? g : b;
        }
        var jpeg = TestImages.WithExifOrientation(TestImages.Jpeg(24, 8, 3, Sample, adobeTransform: 0), orientation);
        var img = Read(dir, "photo.jpg", jpeg, out var info);
        Assert.Equal(orientation, info.Orientation);
        Assert.Equal((24, 8), (info.StoredWidth, info.StoredHeight));
        Assert.Equal(orientation >= 5 ? (8, 24) : (24, 8), (img.Width, img.Height));
        Assert.Equal((img.Width, img.Height), ImageIO.ReadSize(Path.Combine(dir.Path, "photo.jpg"))); // the header alone gives the shown size
        (int, int) Corner(string c) => c switch
        {
            "TL" => (0, 0), "TR" => (img.Width - 1, 0), "BR" => (img.Width - 1, img.Height - 1), _ => (0, img.Height - 1),
        };
        var (x1, y1) = Corner(storedTopLeftAt);
        var (x2, y2) = Corner(storedTopRightAt);
        Assert.Equal(Red, Px(img, x1, y1));
        Assert.Equal(Green, Px(img, x2, y2));
        int reds = 0;
        for (int y = 0; y < img.Height; y++) for (int x = 0; x < img.Width; x++) if (Px(img, x, y) == Red) reds++;
        Assert.Equal(64, reds);
    }

    [Fact]
    public void Greyscale_PngAndJpeg_BecomeEqualChannels()
    {
        using var dir = new TempDir();
        var samples = Enumerable.Range(0, 6 * 4).Select(i => i * 10).ToArray();
        var png = Read(dir, "g.png", TestImages.Png(6, 4, 0, 8, samples), out var info);
        Assert.False(info.DroppedAlpha);
        for (int i = 0; i < samples.Length; i++)
            Assert.Equal(((byte)samples[i], (byte)samples[i], (byte)samples[i]), Px(png, i % 6, i / 6));
        var jpg = Read(dir, "g.jpg", TestImages.Jpeg(16, 8, 1, (c, bx, by) => bx == 0 ? 60 : 190), out _);
        Assert.Equal(((byte)60, (byte)60, (byte)60), Px(jpg, 3, 3));
        Assert.Equal(((byte)190, (byte)190, (byte)190), Px(jpg, 12, 5));
    }

    [Fact]
    public void SixteenBitPngs_AreReadAsTheirHighByte()
    {
        using var dir = new TempDir();
        // RGB 16-bit: 257·v is exactly the 8-bit value v
        int[] rgb = { 200 * 257, 100 * 257, 50 * 257, 0, 65535, 30 * 257 };
        var img = Read(dir, "rgb16.png", TestImages.Png(2, 1, 2, 16, rgb), out var info);
        Assert.Equal(((byte)200, (byte)100, (byte)50), Px(img, 0, 0));
        Assert.Equal(((byte)0, (byte)255, (byte)30), Px(img, 1, 0));
        Assert.False(info.DroppedAlpha);
        var grey = Read(dir, "g16.png", TestImages.Png(2, 1, 0, 16, new[] { 77 * 257, 65535 }), out _);
        Assert.Equal(((byte)77, (byte)77, (byte)77), Px(grey, 0, 0));
        Assert.Equal(((byte)255, (byte)255, (byte)255), Px(grey, 1, 0));
    }

    [Fact]
    public void Alpha_IsDroppedAndReported_OnlyWhenSomethingIsTransparent()
    {
        using var dir = new TempDir();
        // RGBA with a half-transparent pixel: colours as stored (not composited), DroppedAlpha set
        var img = Read(dir, "a.png", TestImages.Png(2, 1, 6, 8, new[] { 200, 100, 50, 30, 10, 20, 30, 255 }), out var info);
        Assert.True(info.DroppedAlpha);
        Assert.Equal(((byte)200, (byte)100, (byte)50), Px(img, 0, 0));
        Assert.Equal(((byte)10, (byte)20, (byte)30), Px(img, 1, 0));
        // fully opaque RGBA and grey+alpha 16-bit: nothing is lost, nothing reported
        Read(dir, "opaque.png", TestImages.Png(2, 1, 6, 8, new[] { 1, 2, 3, 255, 4, 5, 6, 255 }), out info);
        Assert.False(info.DroppedAlpha);
        var ga = Read(dir, "ga16.png", TestImages.Png(1, 1, 4, 16, new[] { 90 * 257, 0 }), out info);
        Assert.True(info.DroppedAlpha);
        Assert.Equal(((byte)90, (byte)90, (byte)90), Px(ga, 0, 0));
    }

    [Fact]
    public void CmykJpegs_AreConvertedWithTheAdobeConvention()
    {
        using var dir = new TempDir();
        // Adobe CMYK JPEGs store inverted ink values: R = C·K/255 etc. With K = 255 the stored C, M, Y are the R, G, B.
        foreach (var adobe in new int?[] { 0, null })
        {
            var img = Read(dir, $"cmyk{adobe}.jpg", TestImages.Jpeg(8, 8, 4, (c, _, _) => c switch { 0 => 200, 1 => 100, 2 => 50, _ => 255 }, adobeTransform: adobe), out _);
            Assert.Equal(((byte)200, (byte)100, (byte)50), Px(img, 4, 4));
        }
        var half = Read(dir, "k.jpg", TestImages.Jpeg(8, 8, 4, (c, _, _) => c == 3 ? 128 : 255, adobeTransform: 0), out _);
        var (r, g, b) = Px(half, 0, 0);
        Assert.InRange(r, 126, 130);
        Assert.Equal((r, r), (g, b));
    }

    [Theory]
    [InlineData(0xC1, 12, 3, "12-bit JPEG is not supported")]
    [InlineData(0xC3, 8, 3, "lossless JPEG (SOF3) is not supported")]
    [InlineData(0xC0, 8, 2, "JPEG with 2 colour components is not supported")]
    public void UnsupportedJpegs_GiveOneClearErrorNamingTheFile(byte sof, int precision, int components, string reason)
    {
        using var dir = new TempDir();
        int level = 1 << (precision - 1);
        File.WriteAllBytes(dir.File("odd.jpg"), TestImages.Jpeg(8, 8, components, (_, _, _) => level, sof: sof, precision: precision));
        var e = Assert.Throws<DiffEggException>(() => ImageIO.ReadRgb(dir.File("odd.jpg")));
        Assert.Equal($"{dir.File("odd.jpg")}: {reason}", e.Message[..(dir.File("odd.jpg").Length + 2 + reason.Length)]);
    }

    [Fact]
    public void TruncatedAndEmptyFiles_AreNamedOnce()
    {
        using var dir = new TempDir();
        var png = TestImages.Png(8, 8, 2, 8, Enumerable.Repeat(90, 8 * 8 * 3).ToArray());
        File.WriteAllBytes(dir.File("trunc.png"), png[..(png.Length / 2)]);
        var e = Assert.Throws<DiffEggException>(() => ImageIO.ReadRgb(dir.File("trunc.png")));
        Assert.Equal(1, e.Message.Split(dir.File("trunc.png")).Length - 1);
        File.WriteAllBytes(dir.File("empty.png"), Array.Empty<byte>());
        Assert.Equal($"{dir.File("empty.png")}: empty file", Assert.Throws<DiffEggException>(() => ImageIO.ReadRgb(dir.File("empty.png"))).Message);
    }
}
