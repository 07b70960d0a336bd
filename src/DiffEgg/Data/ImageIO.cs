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

    static SKBitmap Decode(string path)
    {
        if (!File.Exists(path)) throw new DiffEggException($"{path}: file not found");
        byte[] data = File.ReadAllBytes(path);
        using var codec = SKCodec.Create(new SKMemoryStream(data));
        if (codec == null) throw new DiffEggException($"{path}: not a readable image (corrupt or unsupported format)");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bmp = new SKBitmap(info);
        var result = codec.GetPixels(info, bmp.GetPixels());
        if (result != SKCodecResult.Success && result != SKCodecResult.IncompleteInput)
        {
            bmp.Dispose();
            throw new DiffEggException($"{path}: image could not be decoded ({result})");
        }
        if (result == SKCodecResult.IncompleteInput)
        {
            bmp.Dispose();
            throw new DiffEggException($"{path}: image is truncated");
        }
        return bmp;
    }

    /// <summary>Reads an image as 8-bit RGB (alpha is dropped, not composited).</summary>
    public static RgbImage ReadRgb(string path)
    {
        using var bmp = Decode(path);
        int w = bmp.Width, h = bmp.Height;
        var img = new RgbImage(w, h);
        ReadOnlySpan<byte> src = bmp.GetPixelSpan();
        var dst = img.Pixels;
        for (int i = 0, n = w * h; i < n; i++)
        {
            dst[3 * i] = src[4 * i];
            dst[3 * i + 1] = src[4 * i + 1];
            dst[3 * i + 2] = src[4 * i + 2];
        }
        return img;
    }

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
