using DiffEgg.Common;
using SkiaSharp;

namespace DiffEgg.Data;

/// <summary>An 8-bit RGB image, row-major, 3 bytes per pixel (R, G, B).</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}x{height} must be positive");
        Width = width;
        Height = height;
        Pixels = pixels ?? new byte[width * height * 3];
        if (Pixels.Length != width * height * 3)
            throw new ArgumentException($"pixel buffer has {Pixels.Length} bytes, expected {width}x{height}x3 = {width * height * 3}");
    }
}

/// <summary>PNG/JPEG reading and PNG writing through SkiaSharp, with clear errors and atomic writes.</summary>
public static class ImageIO
{
    public static readonly string[] ImageExtensions = { ".png", ".jpg", ".jpeg", ".bmp", ".webp" };

    public static bool IsImageFile(string path) => ImageExtensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Lists the image files of a folder (sorted by name), or the single file given.</summary>
    public static IReadOnlyList<string> ListImages(string fileOrDir)
    {
        if (File.Exists(fileOrDir)) return new[] { fileOrDir };
        if (!Directory.Exists(fileOrDir)) throw new DiffEggException($"{fileOrDir}: no such file or folder");
        return Directory.EnumerateFiles(fileOrDir).Where(IsImageFile).OrderBy(p => p, StringComparer.Ordinal).ToList();
    }

    /// <summary>What <see cref="ReadRgb(string, out ImageReadInfo)"/> did to a file beyond decoding it.</summary>
    /// <param name="StoredWidth">width as stored in the file (before the EXIF orientation)</param>
    /// <param name="StoredHeight">height as stored in the file</param>
    /// <param name="Orientation">EXIF orientation (1 = as stored, 2..8 = mirrored and/or rotated), applied to the pixels</param>
    /// <param name="DroppedAlpha">the file has pixels that are not fully opaque; their alpha was dropped (colours used as stored, not composited)</param>
    public sealed record ImageReadInfo(int StoredWidth, int StoredHeight, int Orientation, bool DroppedAlpha);

    /// <summary>The size of an image as shown (EXIF orientation applied) from its header, without decoding the pixels.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        if (!File.Exists(path)) throw new DiffEggException($"{path}: file not found");
        try
        {
            long length = new FileInfo(path).Length;
            using var codec = SKCodec.Create(path, out var created)
                ?? throw new DiffEggException($"{path}: {(length == 0 ? "empty file" : $"not a readable image (corrupt or unsupported format; decoder: {created})")}");
            int o = (int)codec.EncodedOrigin;
            return o >= 5 && o <= 8 ? (codec.Info.Height, codec.Info.Width) : (codec.Info.Width, codec.Info.Height);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new DiffEggException($"{path}: cannot read ({e.Message})", e); }
    }

    static SKBitmap Decode(string path, out int orientation)
    {
        if (!File.Exists(path)) throw new DiffEggException($"{path}: file not found");
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new DiffEggException($"{path}: cannot read ({e.Message})", e); }
        using var codec = SKCodec.Create(new SKMemoryStream(data), out var created);
        if (codec == null)
            throw new DiffEggException($"{path}: {UnsupportedReason(data) ?? (data.Length == 0 ? "empty file" : $"not a readable image (corrupt or unsupported format; decoder: {created})")}");
        orientation = (int)codec.EncodedOrigin;
        if (orientation < 1 || orientation > 8) orientation = 1;
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bmp = new SKBitmap(info);
        var result = codec.GetPixels(info, bmp.GetPixels());
        if (result == SKCodecResult.IncompleteInput)
        {
            bmp.Dispose();
            throw new DiffEggException($"{path}: image is truncated");
        }
        if (result != SKCodecResult.Success)
        {
            bmp.Dispose();
            throw new DiffEggException($"{path}: {UnsupportedReason(data) ?? $"image could not be decoded ({result})"}");
        }
        return bmp;
    }

    /// <summary>
    /// Why a JPEG the decoder refused is unsupported, read from its frame header (precision, coding process, component count);
    /// null when nothing specific is found. The decoder reads 8-bit baseline/progressive JPEGs with 1 (grey), 3 (YCbCr/RGB)
    /// or 4 (CMYK/YCCK, Adobe convention) components.
    /// </summary>
    internal static string? UnsupportedReason(byte[] d)
    {
        if (d.Length < 4 || d[0] != 0xFF || d[1] != 0xD8) return null;
        int i = 2;
        while (i + 4 <= d.Length)
        {
            if (d[i] != 0xFF) return null;
            byte m = d[i + 1];
            if (m == 0xFF) { i++; continue; }
            if (m == 0xD9 || m == 0xDA) return null; // no frame header before the scan
            int len = (d[i + 2] << 8) | d[i + 3];
            bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
            if (sof && i + 10 <= d.Length)
            {
                int precision = d[i + 4], comps = d[i + 9];
                string process = m switch
                {
                    0xC3 or 0xC7 or 0xCB or 0xCF => "lossless",
                    0xC5 or 0xC6 or 0xC7 or 0xCD or 0xCE => "hierarchical",
                    _ => "",
                };
                if (process != "") return $"{process} JPEG (SOF{m - 0xC0}) is not supported; convert it to an 8-bit baseline JPEG or a PNG";
                if (precision != 8) return $"{precision}-bit JPEG is not supported (8-bit samples only); convert it to an 8-bit JPEG or a PNG";
                if (comps is not (1 or 3 or 4)) return $"JPEG with {comps} colour components is not supported (1 grey, 3 YCbCr/RGB or 4 CMYK/YCCK)";
                return null;
            }
            i += 2 + len;
        }
        return null;
    }

    /// <summary>Reads an image as 8-bit RGB: EXIF orientation applied (the image as a viewer shows it), alpha dropped (not composited), 16-bit samples reduced to 8 bits.</summary>
    public static RgbImage ReadRgb(string path) => ReadRgb(path, out _);

    /// <summary>As <see cref="ReadRgb(string)"/>, and says what was done beyond decoding (orientation applied, alpha dropped).</summary>
    public static RgbImage ReadRgb(string path, out ImageReadInfo info)
    {
        using var bmp = Decode(path, out int orientation);
        int sw = bmp.Width, sh = bmp.Height;
        bool swap = orientation >= 5; // 5..8 transpose the axes
        int w = swap ? sh : sw, h = swap ? sw : sh;
        var img = new RgbImage(w, h);
        ReadOnlySpan<byte> src = bmp.GetPixelSpan();
        var dst = img.Pixels;
        bool alpha = false;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                var (sx, sy) = StoredPixel(orientation, x, y, sw, sh);
                int s = 4 * (sy * sw + sx), t = 3 * (y * w + x);
                dst[t] = src[s];
                dst[t + 1] = src[s + 1];
                dst[t + 2] = src[s + 2];
                alpha |= src[s + 3] != 255;
            }
        info = new ImageReadInfo(sw, sh, orientation, alpha);
        return img;
    }

    /// <summary>The stored pixel shown at (x, y) of the upright image for EXIF orientation 1..8 (TIFF 6.0 tag 274); stored size sw×sh.</summary>
    static (int X, int Y) StoredPixel(int orientation, int x, int y, int sw, int sh) => orientation switch
    {
        2 => (sw - 1 - x, y),                 // mirrored horizontally
        3 => (sw - 1 - x, sh - 1 - y),        // rotated 180°
        4 => (x, sh - 1 - y),                 // mirrored vertically
        5 => (y, x),                          // transposed
        6 => (y, sh - 1 - x),                 // stored rotated 90° counter-clockwise: turn clockwise
        7 => (sw - 1 - y, sh - 1 - x),        // transversed
        8 => (sw - 1 - y, x),                 // stored rotated 90° clockwise: turn counter-clockwise
        _ => (x, y),
    };

    /// <summary>Reads a single-channel image (e.g. a class-id or edge PNG). For RGB files the red channel is taken; the caller can check <paramref name="wasGray"/>.</summary>
    public static byte[] ReadGray(string path, out int width, out int height, out bool wasGray)
    {
        if (!File.Exists(path)) throw new DiffEggException($"{path}: file not found");
        byte[] data = File.ReadAllBytes(path);
        using (var codec = SKCodec.Create(new SKMemoryStream(data)))
        {
            if (codec == null) throw new DiffEggException($"{path}: not a readable image (corrupt or unsupported format)");
            wasGray = codec.Info.ColorType == SKColorType.Gray8;
        }
        var rgb = ReadRgb(path);
        width = rgb.Width;
        height = rgb.Height;
        var g = new byte[width * height];
        for (int i = 0; i < g.Length; i++) g[i] = rgb.Pixels[3 * i];
        return g;
    }

    /// <summary>Writes 8-bit RGB as PNG, atomically.</summary>
    public static void WriteRgbPng(string path, RgbImage img)
    {
        var info = new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bmp = new SKBitmap(info);
        Span<byte> dst = bmp.GetPixelSpan();
        var src = img.Pixels;
        for (int i = 0, n = img.Width * img.Height; i < n; i++)
        {
            dst[4 * i] = src[3 * i];
            dst[4 * i + 1] = src[3 * i + 1];
            dst[4 * i + 2] = src[3 * i + 2];
            dst[4 * i + 3] = 255;
        }
        Encode(path, bmp);
    }

    /// <summary>Writes a single-channel 8-bit PNG (values stored exactly), atomically.</summary>
    public static void WriteGrayPng(string path, byte[] values, int width, int height)
    {
        if (values.Length != width * height) throw new ArgumentException($"gray buffer has {values.Length} values, expected {width}x{height}");
        var info = new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque);
        using var bmp = new SKBitmap(info);
        values.CopyTo(bmp.GetPixelSpan());
        Encode(path, bmp);
    }

    static void Encode(string path, SKBitmap bmp)
    {
        using var image = SKImage.FromBitmap(bmp);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new DiffEggException($"{path}: PNG encoding failed");
        AtomicFile.WriteAllBytes(path, data.Span);
    }

    /// <summary>Resizes RGB with bilinear filtering (for model input).</summary>
    public static RgbImage Resize(RgbImage img, int width, int height)
    {
        if (img.Width == width && img.Height == height) return img;
        var info = new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var src = new SKBitmap(info);
        Span<byte> s = src.GetPixelSpan();
        for (int i = 0, n = img.Width * img.Height; i < n; i++)
        {
            s[4 * i] = img.Pixels[3 * i]; s[4 * i + 1] = img.Pixels[3 * i + 1]; s[4 * i + 2] = img.Pixels[3 * i + 2]; s[4 * i + 3] = 255;
        }
        using var dst = src.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None))
            ?? throw new DiffEggException($"could not resize {img.Width}x{img.Height} to {width}x{height}");
        var outImg = new RgbImage(width, height);
        ReadOnlySpan<byte> d = dst.GetPixelSpan();
        for (int i = 0, n = width * height; i < n; i++)
        {
            outImg.Pixels[3 * i] = d[4 * i]; outImg.Pixels[3 * i + 1] = d[4 * i + 1]; outImg.Pixels[3 * i + 2] = d[4 * i + 2];
        }
        return outImg;
    }
}
