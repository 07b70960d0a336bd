using System.Buffers.Binary;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Data;

namespace DiffEgg.Refinement;

/// <summary>An edge map for refinement (Alg 4 input E): row-major values in [0, 1], 1 = edge.</summary>
public sealed class EdgeMap
{
    public int Width { get; }
    public int Height { get; }
    public float[] Values { get; }

    public EdgeMap(int width, int height, float[] values)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"edge map size {width}x{height} must be positive");
        if (values.Length != width * height)
            throw new ArgumentException($"edge map has {values.Length} values, expected {width}x{height} = {width * height}");
        Width = width;
        Height = height;
        Values = values;
    }
}

/// <summary>
/// Reads edge maps as written by <c>diffegg edges</c> (ternary PNG, float safetensors) or any binary/probability PNG.
/// Convention: a PNG value v maps to v/255, except in a ternary PNG (every value is 0, 128 or 255) where 128 ("uncertain")
/// maps to <c>uncertainValue</c> (default 0.5, i.e. it counts as an edge for CCL at threshold 0.5 and passes (1-0.5)^β of a clean path's affinity).
/// </summary>
public static class EdgeMapReader
{
    /// <summary>Suffixes tried, in order, after an image's file stem when looking up its edge map.</summary>
    public static readonly string[] Suffixes = { ".edges.safetensors", ".ternary.png", ".png" };

    /// <summary>Finds the edge map of an image stem in a folder: <c>stem.edges.safetensors</c>, else <c>stem.ternary.png</c>, else <c>stem.png</c>; null if none.</summary>
    public static string? Find(string dir, string stem)
    {
        foreach (var s in Suffixes)
        {
            string p = Path.Combine(dir, stem + s);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Reads an edge map (PNG or safetensors with tensor <c>edges</c>) into [0,1] values; throws <see cref="DiffEggException"/> naming the file on bad input.</summary>
    public static EdgeMap Read(string path, float uncertainValue = 0.5f)
    {
        if (!File.Exists(path)) throw new DiffEggException($"{path}: edge map not found");
        return path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? ReadSafetensors(path) : ReadPng(path, uncertainValue);
    }

    static EdgeMap ReadPng(string path, float uncertainValue)
    {
        byte[] g = ImageIO.ReadGray(path, out int w, out int h, out _);
        bool ternary = true;
        foreach (byte b in g)
            if (b != 0 && b != 128 && b != 255) { ternary = false; break; }
        var v = new float[g.Length];
        for (int i = 0; i < g.Length; i++)
            v[i] = ternary && g[i] == 128 ? uncertainValue : g[i] / 255f;
        return new EdgeMap(w, h, v);
    }

    static EdgeMap ReadSafetensors(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        if (data.Length < 8) throw new DiffEggException($"{path}: not a safetensors file (shorter than its 8-byte header length)");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(data);
        if (n > (ulong)(data.Length - 8)) throw new DiffEggException($"{path}: safetensors header length {n} exceeds the file size {data.Length}");
        JsonElement entry;
        long dataStart = 8 + (long)n;
        try
        {
            using var doc = JsonDocument.Parse(data.AsMemory(8, (int)n));
            if (!doc.RootElement.TryGetProperty("edges", out var e))
                throw new DiffEggException($"{path}: safetensors file has no tensor named 'edges'");
            entry = e.Clone();
        }
        catch (JsonException ex)
        {
            throw new DiffEggException($"{path}: safetensors header is not valid JSON ({ex.Message})", ex);
        }
        string dtype = entry.TryGetProperty("dtype", out var dt) ? dt.GetString() ?? "" : "";
        if (!entry.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new DiffEggException($"{path}: tensor 'edges' has no shape");
        var shape = shapeEl.EnumerateArray().Select(x => x.GetInt64()).ToArray();
        var hw = shape.SkipWhile(d => d == 1).ToArray();
        if (shape.Length < 2 || hw.Length > 2 || shape[^1] < 1 || shape[^2] < 1)
            throw new DiffEggException($"{path}: tensor 'edges' has shape [{string.Join(",", shape)}], expected [H,W]");
        int h = (int)shape[^2], w = (int)shape[^1];
        var offs = entry.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
        int size = dtype switch { "F32" => 4, "F16" or "BF16" => 2, "F64" => 8, _ => 0 };
        if (size == 0) throw new DiffEggException($"{path}: tensor 'edges' has dtype {dtype}, expected F32, F16, BF16 or F64");
        if (offs.Length != 2 || offs[1] - offs[0] != (long)w * h * size || dataStart + offs[1] > data.Length)
            throw new DiffEggException($"{path}: tensor 'edges' data offsets [{string.Join(",", offs)}] do not match shape [{h},{w}] {dtype} or exceed the file");
        var src = data.AsSpan((int)(dataStart + offs[0]), w * h * size);
        var v = new float[w * h];
        for (int i = 0; i < v.Length; i++)
        {
            float x = dtype switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(src.Slice(4 * i)),
                "F64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(src.Slice(8 * i)),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(src.Slice(2 * i)),
                _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i)) << 16),
            };
            if (!float.IsFinite(x) || x < -1e-4f || x > 1 + 1e-4f)
                throw new DiffEggException($"{path}: tensor 'edges' value {x} at (y={i / w}, x={i % w}) is outside [0,1]");
            v[i] = Math.Clamp(x, 0f, 1f);
        }
        return new EdgeMap(w, h, v);
    }
}
