using System.Buffers.Binary;
using System.IO.Compression;
using DiffEgg.Common;

namespace DiffEgg.Formats;

/// <summary>
/// Reads the raw samples of 8-bit gray or palette (indexed) PNGs — the palette index is the class id in VOC-style
/// label maps, which image libraries would expand to colours. Non-interlaced, bit depths 1/2/4/8.
/// </summary>
internal static class PngIndexed
{
    static readonly byte[] Signature = { 137, 80, 78, 71, 13, 10, 26, 10 };

    /// <summary>Returns the per-pixel sample (palette index or gray level) or null when the PNG is not gray/palette (then the caller decodes colours).</summary>
    public static byte[]? TryReadSamples(string path, out int width, out int height)
    {
        width = height = 0;
        byte[] data = File.ReadAllBytes(path);
        if (data.Length < 33 || !data.AsSpan(0, 8).SequenceEqual(Signature)) throw new DiffEggException($"{path}: not a PNG file");
        int pos = 8, bitDepth = 0, colorType = -1, interlace = 0;
        using var idat = new MemoryStream();
        while (pos + 8 <= data.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(data, pos + 4, 4);
            if (len < 0 || pos + 12 + (long)len > data.Length) throw new DiffEggException($"{path}: PNG chunk '{type}' is truncated");
            var body = data.AsSpan(pos + 8, len);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(body);
                height = BinaryPrimitives.ReadInt32BigEndian(body[4..]);
                bitDepth = body[8]; colorType = body[9]; interlace = body[12];
                if (colorType is not (0 or 3) || bitDepth > 8) return null;   // colour or 16-bit: not a label map of indices
                if (interlace != 0) return null;
            }
            else if (type == "IDAT") idat.Write(body);
            else if (type == "IEND") break;
            pos += 12 + len;
        }
        if (colorType < 0) throw new DiffEggException($"{path}: PNG has no IHDR chunk");
        if (width <= 0 || height <= 0) throw new DiffEggException($"{path}: PNG size {width}x{height} is invalid");
        int rowBytes = (width * bitDepth + 7) / 8;
        var raw = new byte[(long)(rowBytes + 1) * height];
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int read = 0;
            while (read < raw.Length)
            {
                int n = z.Read(raw, read, raw.Length - read);
                if (n == 0) break;
                read += n;
            }
            if (read < raw.Length) throw new DiffEggException($"{path}: PNG image data is truncated");
        }
        catch (InvalidDataException e) { throw new DiffEggException($"{path}: PNG image data is corrupt ({e.Message})", e); }
        var prev = new byte[rowBytes];
        var cur = new byte[rowBytes];
        var samples = new byte[(long)width * height];
        int bpp = 1; // bytes per complete pixel, rounded up to 1 for sub-byte depths
        for (int y = 0; y < height; y++)
        {
            int off = y * (rowBytes + 1);
            byte filter = raw[off];
            Array.Copy(raw, off + 1, cur, 0, rowBytes);
            for (int i = 0; i < rowBytes; i++)
            {
                int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                cur[i] = filter switch
                {
                    0 => cur[i],
                    1 => (byte)(cur[i] + a),
                    2 => (byte)(cur[i] + b),
                    3 => (byte)(cur[i] + ((a + b) >> 1)),
                    4 => (byte)(cur[i] + Paeth(a, b, c)),
                    _ => throw new DiffEggException($"{path}: PNG row {y} has an unknown filter type {filter}"),
                };
            }
            int perByte = 8 / bitDepth, mask = (1 << bitDepth) - 1;
            for (int x = 0; x < width; x++)
            {
                if (bitDepth == 8) samples[(long)y * width + x] = cur[x];
                else
                {
                    int byteIndex = x / perByte, shift = 8 - bitDepth * (x % perByte + 1);
                    samples[(long)y * width + x] = (byte)((cur[byteIndex] >> shift) & mask);
                }
            }
            (prev, cur) = (cur, prev);
        }
        return samples;
    }

    static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
