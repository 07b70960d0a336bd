using System.Buffers.Binary;
using System.IO.Compression;
using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Tests.Coco;

/// <summary>Palette-indexed PNGs (as VOC ships its class maps) read as class ids; built here byte by byte with every PNG row filter.</summary>
public class PaletteReadTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-pal-");
    string _dir => _temp.Path;
    public void Dispose() => _temp.Dispose();

    static uint Crc(ReadOnlySpan<byte> d)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in d) { c ^= b; for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1; }
        return ~c;
    }

    static void Chunk(Stream s, string type, byte[] body)
    {
        var head = new byte[4]; BinaryPrimitives.WriteInt32BigEndian(head, body.Length); s.Write(head);
        var tb = System.Text.Encoding.ASCII.GetBytes(type).Concat(body).ToArray(); s.Write(tb);
        var crc = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(crc, Crc(tb)); s.Write(crc);
    }

    static int Paeth(int a, int b, int c) { int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c); return pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }

    /// <summary>A palette PNG of the given depth; row y uses filter y % 5 (None, Sub, Up, Average, Paeth).</summary>
    static byte[] PalettePng(byte[] idx, int w, int h, int depth)
    {
        int rowBytes = (w * depth + 7) / 8;
        var rows = new byte[h][];
        for (int y = 0; y < h; y++)
        {
            rows[y] = new byte[rowBytes];
            for (int x = 0; x < w; x++)
            {
                int per = 8 / depth, shift = 8 - depth * (x % per + 1);
                rows[y][x / per] |= (byte)(idx[y * w + x] << shift);
            }
        }
        using var raw = new MemoryStream();
        for (int y = 0; y < h; y++)
        {
            int f = y % 5;
            raw.WriteByte((byte)f);
            for (int i = 0; i < rowBytes; i++)
            {
                int a = i >= 1 ? rows[y][i - 1] : 0, b = y > 0 ? rows[y - 1][i] : 0, c = i >= 1 && y > 0 ? rows[y - 1][i - 1] : 0;
                int pred = f switch { 0 => 0, 1 => a, 2 => b, 3 => (a + b) >> 1, _ => Paeth(a, b, c) };
                raw.WriteByte((byte)(rows[y][i] - pred));
            }
        }
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) { raw.Position = 0; raw.CopyTo(zs); }
        using var png = new MemoryStream();
        png.Write(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 });
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w); BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        ihdr[8] = (byte)depth; ihdr[9] = 3;
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "PLTE", Enumerable.Range(0, 3 << depth).Select(i => (byte)(i * 7)).ToArray());
        Chunk(png, "IDAT", z.ToArray());
        Chunk(png, "IEND", Array.Empty<byte>());
        return png.ToArray();
    }

    [Theory]
    [InlineData(8)]
    [InlineData(4)]
    [InlineData(2)]
    [InlineData(1)]
    public void PaletteIndices_AreTheClassIds(int depth)
    {
        int w = 13, h = 11, max = (1 << depth) - 1;
        var idx = new byte[w * h];
        for (int i = 0; i < idx.Length; i++) idx[i] = (byte)((i * 37 + i / w) % (max + 1));
        if (depth == 8) idx[5] = 255; // VOC ignore label
        string p = Path.Combine(_dir, $"p{depth}.png");
        File.WriteAllBytes(p, PalettePng(idx, w, h, depth));
        Assert.Equal(idx, PanopticFiles.ReadClassIdPng(p, out int rw, out int rh));
        Assert.Equal((w, h), (rw, rh));
    }

    [Fact]
    public void TruncatedPng_IsAClearError()
    {
        var bytes = PalettePng(new byte[64], 8, 8, 8);
        string p = Path.Combine(_dir, "t.png");
        File.WriteAllBytes(p, bytes[..40]);
        var e = Assert.Throws<DiffEggException>(() => PanopticFiles.ReadClassIdPng(p, out _, out _));
        Assert.Contains(p, e.Message);
    }
}
