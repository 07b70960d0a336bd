using System.IO.Compression;
using System.Text;

namespace DiffEgg.Tests;

/// <summary>
/// Writes the image files real photos come as, byte by byte, so that the readers can be tested without downloads: PNGs of any
/// colour type and bit depth (zlib + CRC, unfiltered scanlines), baseline-style JPEGs whose 8×8 blocks are flat colours (DC-only
/// Huffman coding; any component count, precision and SOF marker, optional Adobe marker) and an EXIF orientation segment for a JPEG.
/// </summary>
public static class TestImages
{
    // ------------------------------------------------------------------ PNG

    /// <summary>
    /// A PNG of <paramref name="colorType"/> (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA) and <paramref name="bitDepth"/> (8 or 16);
    /// <paramref name="samples"/> holds width·height·channels values in row-major order (0..255 or 0..65535).
    /// </summary>
    public static byte[] Png(int width, int height, int colorType, int bitDepth, int[] samples)
    {
        int channels = colorType switch { 0 => 1, 2 => 3, 4 => 2, 6 => 4, _ => throw new ArgumentException($"colour type {colorType}") };
        if (samples.Length != width * height * channels) throw new ArgumentException($"{samples.Length} samples, expected {width * height * channels}");
        int bytesPerSample = bitDepth / 8;
        var raw = new MemoryStream();
        for (int y = 0; y < height; y++)
        {
            raw.WriteByte(0); // filter: none
            for (int i = 0; i < width * channels; i++)
            {
                int v = samples[y * width * channels + i];
                if (bytesPerSample == 2) raw.WriteByte((byte)(v >> 8));
                raw.WriteByte((byte)v);
            }
        }
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) raw.WriteTo(zs);

        var png = new MemoryStream();
        png.Write(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
        var ihdr = new byte[13];
        BigEndian(ihdr, 0, width);
        BigEndian(ihdr, 4, height);
        ihdr[8] = (byte)bitDepth;
        ihdr[9] = (byte)colorType;
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", z.ToArray());
        Chunk(png, "IEND", Array.Empty<byte>());
        return png.ToArray();
    }

    static void BigEndian(byte[] b, int at, int v)
    {
        b[at] = (byte)(v >> 24); b[at + 1] = (byte)(v >> 16); b[at + 2] = (byte)(v >> 8); b[at + 3] = (byte)v;
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4];
        BigEndian(len, 0, data.Length);
        s.Write(len);
        var td = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(td);
        var crc = new byte[4];
        BigEndian(crc, 0, (int)Crc32(td));
        s.Write(crc);
    }

    static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xFFFFFFFF;
    }

    // ------------------------------------------------------------------ JPEG

    /// <summary>
    /// A JPEG whose every 8×8 block of component c is the flat sample <paramref name="blockSample"/>(c, blockX, blockY) (0..255),
    /// one block per component per MCU (no subsampling), quantisation 1, DC-only (every AC run is an EOB).
    /// <paramref name="sof"/> is the frame marker's low byte (0xC0 baseline, 0xC1 extended, 0xC3 lossless, ...),
    /// <paramref name="precision"/> the sample precision written into it; <paramref name="adobeTransform"/> adds an Adobe APP14
    /// segment with that colour transform (0 = none, i.e. CMYK/RGB as stored; 1 = YCbCr; 2 = YCCK).
    /// </summary>
    public static byte[] Jpeg(int width, int height, int components, Func<int, int, int, int> blockSample,
        byte sof = 0xC0, int precision = 8, int? adobeTransform = null)
    {
        var o = new MemoryStream();
        void Marker(byte m) { o.WriteByte(0xFF); o.WriteByte(m); }
        void Segment(byte m, byte[] payload)
        {
            Marker(m);
            o.WriteByte((byte)((payload.Length + 2) >> 8));
            o.WriteByte((byte)(payload.Length + 2));
            o.Write(payload);
        }
        Marker(0xD8);
        if (adobeTransform is int t)
            Segment(0xEE, Encoding.ASCII.GetBytes("Adobe").Concat(new byte[] { 0, 100, 0, 0, 0, 0, (byte)t }).ToArray());
        Segment(0xDB, new byte[] { 0 }.Concat(Enumerable.Repeat((byte)1, 64)).ToArray());
        var frame = new List<byte> { (byte)precision, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, (byte)components };
        for (int c = 0; c < components; c++) frame.AddRange(new byte[] { (byte)(c + 1), 0x11, 0 });
        Segment(sof, frame.ToArray());
        // DC table: the standard luminance DC table of JPEG Annex K (categories 0..11)
        byte[] dcBits = { 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
        byte[] dcVals = Enumerable.Range(0, 12).Select(i => (byte)i).ToArray();
        Segment(0xC4, new byte[] { 0x00 }.Concat(dcBits).Concat(dcVals).ToArray());
        // AC table: a single symbol, EOB (0x00), code "0"
        var acBits = new byte[16]; acBits[0] = 1;
        Segment(0xC4, new byte[] { 0x10 }.Concat(acBits).Concat(new byte[] { 0x00 }).ToArray());
        var scan = new List<byte> { (byte)components };
        for (int c = 0; c < components; c++) scan.AddRange(new byte[] { (byte)(c + 1), 0x00 });
        scan.AddRange(new byte[] { 0, 63, 0 });
        Segment(0xDA, scan.ToArray());

        var codes = CanonicalCodes(dcBits);
        var bits = new BitWriter(o);
        var pred = new int[components];
        int level = 1 << (precision - 1);
        for (int by = 0; by < (height + 7) / 8; by++)
            for (int bx = 0; bx < (width + 7) / 8; bx++)
                for (int c = 0; c < components; c++)
                {
                    int dc = (blockSample(c, bx, by) - level) * 8; // a flat block: every sample = DC/8 + level shift
                    int diff = dc - pred[c];
                    pred[c] = dc;
                    int cat = 0;
                    for (int a = Math.Abs(diff); a > 0; a >>= 1) cat++;
                    var (code, len) = codes[cat];
                    bits.Write(code, len);
                    if (cat > 0) bits.Write(diff >= 0 ? diff : diff + (1 << cat) - 1, cat);
                    bits.Write(0, 1); // AC: EOB
                }
        bits.Flush();
        Marker(0xD9);
        return o.ToArray();
    }

    static (int Code, int Length)[] CanonicalCodes(byte[] bits)
    {
        var r = new List<(int, int)>();
        int code = 0;
        for (int len = 1; len <= 16; len++)
        {
            for (int i = 0; i < bits[len - 1]; i++) r.Add((code++, len));
            code <<= 1;
        }
        return r.ToArray();
    }

    sealed class BitWriter(Stream s)
    {
        int _acc, _n;

        public void Write(int value, int length)
        {
            for (int i = length - 1; i >= 0; i--)
            {
                _acc = (_acc << 1) | ((value >> i) & 1);
                if (++_n == 8) Emit();
            }
        }

        void Emit()
        {
            s.WriteByte((byte)_acc);
            if (_acc == 0xFF) s.WriteByte(0); // byte stuffing
            _acc = 0; _n = 0;
        }

        public void Flush() { while (_n != 0) Write(1, 1); }
    }

    /// <summary>Inserts an EXIF APP1 segment (big-endian TIFF, one IFD entry: Orientation = <paramref name="orientation"/>) right after a JPEG's SOI.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, int orientation)
    {
        if (jpeg.Length < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) throw new ArgumentException("not a JPEG");
        var tiff = new byte[]
        {
            (byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8,       // header, IFD0 at offset 8
            0, 1,                                          // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (byte)orientation, 0, 0, // Orientation, SHORT, count 1, value
            0, 0, 0, 0,                                    // no next IFD
        };
        var payload = Encoding.ASCII.GetBytes("Exif\0\0").Concat(tiff).ToArray();
        var seg = new byte[] { 0xFF, 0xE1, (byte)((payload.Length + 2) >> 8), (byte)(payload.Length + 2) }.Concat(payload);
        return jpeg.Take(2).Concat(seg).Concat(jpeg.Skip(2)).ToArray();
    }
}
