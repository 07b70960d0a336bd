using System.Buffers.Binary;
using System.Text;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Refinement;

namespace DiffEgg.Tests.Refinement;

public class ComponentsAndEdgeReaderTests
{
    [Fact]
    public void LabelsComponentsWithConnectivityAndMinArea()
    {
        // 6×4: a diagonal pair (joined only with 8-connectivity), a 3-pixel bar, a single pixel
        string[] rows =
        {
            "1.....",
            ".1.111",
            "......",
            "....1.",
        };
        var fg = rows.SelectMany(r => r.Select(c => c == '1')).ToArray();
        var c8 = ConnectedComponents.Label(fg, 6, 4, 8);
        Assert.Equal(3, c8.Count);
        Assert.Equal(new[] { 0, 2, 3, 1 }, c8.Areas);
        Assert.Equal(c8.Labels[0], c8.Labels[7]);
        var c4 = ConnectedComponents.Label(fg, 6, 4, 4);
        Assert.Equal(4, c4.Count);
        Assert.NotEqual(c4.Labels[0], c4.Labels[7]);
        var big = ConnectedComponents.Label(fg, 6, 4, 8, minArea: 2);
        Assert.Equal(2, big.Count);
        Assert.Equal(0, big.Labels[3 * 6 + 4]);
        // a U shape needs the union step: both arms are one component
        string[] u = { "1.1", "1.1", "111" };
        var cu = ConnectedComponents.Label(u.SelectMany(r => r.Select(c => c == '1')).ToArray(), 3, 3, 4);
        Assert.Equal(1, cu.Count);
        Assert.Equal(7, cu.Areas[1]);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(-0.01f)]
    [InlineData(1.01f)]
    public void EdgeMap_RefusesValuesOutsideTheUnitInterval(float bad)
    {
        var e = Assert.Throws<ArgumentException>(() => new EdgeMap(2, 2, new[] { 0f, 1f, bad, 0.5f }));
        Assert.Contains("(y=1, x=0)", e.Message);
        Assert.Equal(new[] { 0f, 1f, 0.25f, 0.5f }, new EdgeMap(2, 2, new[] { 0f, 1f, 0.25f, 0.5f }).Values);
    }

    [Fact]
    public void PngFormat_ComesFromTheNameOrTheCaller_NeverFromTheValues()
    {
        using var dir = new TempDir();
        var classes = new byte[] { 0, 128, 255, 0 };
        ImageIO.WriteGrayPng(dir.File("a.png"), classes, 2, 2);              // a plain PNG whose values happen to be 0/128/255
        ImageIO.WriteGrayPng(dir.File("a.ternary.png"), classes, 2, 2);
        Assert.Equal(128 / 255f, EdgeMapReader.Read(dir.File("a.png")).Values[1]);
        Assert.Equal(0.5f, EdgeMapReader.Read(dir.File("a.ternary.png")).Values[1]);
        Assert.Equal(0.25f, EdgeMapReader.Read(dir.File("a.png"), 0.25f, pngFormat: EdgePngFormat.Ternary).Values[1]);
        Assert.Equal(128 / 255f, EdgeMapReader.Read(dir.File("a.ternary.png"), pngFormat: EdgePngFormat.Probability).Values[1]);
        ImageIO.WriteGrayPng(dir.File("b.ternary.png"), new byte[] { 0, 77, 255, 0 }, 2, 2);
        var e = Assert.Throws<DiffEggException>(() => EdgeMapReader.Read(dir.File("b.ternary.png")));
        Assert.Contains("b.ternary.png", e.Message);
        Assert.Contains("value 77 at (y=0, x=1)", e.Message);
    }

    [Fact]
    public void NonEdgeLabellingUsesTheThreshold()
    {
        var e = new float[] { 0, 0.49f, 0.5f, 0, 0.2f };
        var c = ConnectedComponents.LabelNonEdge(e, 5, 1);
        Assert.Equal(2, c.Count);
        Assert.Equal(new[] { 1, 1, 0, 2, 2 }, c.Labels);
    }

    [Fact]
    public void ReadsTernaryProbabilityAndSafetensorsEdgeMaps()
    {
        using var dir = new TempDir("diffegg-edges");
        ImageIO.WriteGrayPng(Path.Combine(dir, "t.ternary.png"), new byte[] { 0, 128, 255, 0 }, 2, 2);
        var t = EdgeMapReader.Read(Path.Combine(dir, "t.ternary.png"));
        Assert.Equal(new[] { 0f, 0.5f, 1f, 0f }, t.Values);
        Assert.Equal(0.25f, EdgeMapReader.Read(Path.Combine(dir, "t.ternary.png"), 0.25f).Values[1]);
        ImageIO.WriteGrayPng(Path.Combine(dir, "p.png"), new byte[] { 0, 51, 128, 255 }, 2, 2);
        var p = EdgeMapReader.Read(Path.Combine(dir, "p.png"));
        Assert.Equal(new[] { 0f, 0.2f, 128 / 255f, 1f }, p.Values);

        WriteSafetensors(Path.Combine(dir, "s.edges.safetensors"), "edges", new[] { 0f, 0.25f, 0.75f, 1f, 0.5f, 0f }, 2, 3);
        var s = EdgeMapReader.Read(Path.Combine(dir, "s.edges.safetensors"), scale: EdgeScale.MinMax);
        Assert.Equal((3, 2), (s.Width, s.Height));
        Assert.Equal(new[] { 0f, 0.25f, 0.75f, 1f, 0.5f, 0f }, s.Values);
        Assert.Equal(Path.Combine(dir, "s.edges.safetensors"), EdgeMapReader.Find(dir, "s"));
        Assert.Equal(Path.Combine(dir, "t.ternary.png"), EdgeMapReader.Find(dir, "t"));
        Assert.Null(EdgeMapReader.Find(dir, "zzz"));

        // raw EdgeKL values (arbitrary scale) are min-max normalised to [0,1]
        WriteSafetensors(Path.Combine(dir, "raw.edges.safetensors"), "edges", new[] { 0.001f, 0.003f, 0.002f, 0.001f }, 2, 2);
        var raw = EdgeMapReader.Read(Path.Combine(dir, "raw.edges.safetensors"), scale: EdgeScale.MinMax);
        // by default a float map is read as refine reads it (soft ternary), whichever entry point is used
        Assert.Equal(EdgeMapReader.Load(dir, "raw", EdgeScale.Soft).Map.Values, EdgeMapReader.Read(Path.Combine(dir, "raw.edges.safetensors")).Values);
        Assert.Equal(EdgeMapReader.Load(dir, "raw", EdgeScale.Ternary).Map.Values, EdgeMapReader.Read(Path.Combine(dir, "raw.edges.safetensors")).Values);
        Assert.Equal(new[] { 0f, 1f, 0.5f, 0f }, raw.Values.Select(x => MathF.Round(x, 5)).ToArray());
        // a ternary PNG is preferred over the float map of the same stem
        File.Copy(Path.Combine(dir, "t.ternary.png"), Path.Combine(dir, "raw.ternary.png"));
        Assert.Equal(Path.Combine(dir, "raw.ternary.png"), EdgeMapReader.Find(dir, "raw"));

        WriteSafetensors(Path.Combine(dir, "bad.edges.safetensors"), "edges", new[] { 0f, -2f }, 1, 2);
        var ex = Assert.Throws<DiffEggException>(() => EdgeMapReader.Read(Path.Combine(dir, "bad.edges.safetensors")));
        Assert.Contains("bad.edges.safetensors", ex.Message);
        WriteSafetensors(Path.Combine(dir, "other.edges.safetensors"), "attn", new[] { 0f, 0f }, 1, 2);
        Assert.Contains("'edges'", Assert.Throws<DiffEggException>(() => EdgeMapReader.Read(Path.Combine(dir, "other.edges.safetensors"))).Message);
        File.WriteAllBytes(Path.Combine(dir, "junk.edges.safetensors"), new byte[] { 200, 0, 0, 0, 0, 0, 0, 0, 1 });
        Assert.Throws<DiffEggException>(() => EdgeMapReader.Read(Path.Combine(dir, "junk.edges.safetensors")));
    }

    internal static void WriteSafetensors(string path, string name, float[] v, int h, int w)
    {
        string header = $"{{\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{h},{w}],\"data_offsets\":[0,{v.Length * 4}]}}}}";
        var hb = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + hb.Length + v.Length * 4];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)hb.Length);
        hb.CopyTo(bytes, 8);
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(8 + hb.Length + 4 * i), v[i]);
        File.WriteAllBytes(path, bytes);
    }
}
