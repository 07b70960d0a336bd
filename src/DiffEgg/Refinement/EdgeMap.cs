using System.Buffers.Binary;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Data;

namespace DiffEgg.Refinement;

/// <summary>An edge map for refinement (Alg 4 input E): row-major values in [0, 1], 1 = edge; other values are refused at construction.</summary>
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
        for (int i = 0; i < values.Length; i++)
            if (!(values[i] >= 0f && values[i] <= 1f))   // also NaN
                throw new ArgumentException($"edge map value {values[i]} at (y={i / width}, x={i % width}) is outside [0, 1]: scale it first (EdgeMapReader reads files into [0, 1])");
        Width = width;
        Height = height;
        Values = values;
    }
}

/// <summary>How an 8-bit grey edge map is read: <see cref="Probability"/> v/255, or <see cref="Ternary"/> (Alg 2 classes 0 / 128 / 255).</summary>
public enum EdgePngFormat
{
    /// <summary>Each value v is an edge probability v/255 (the default for any PNG other than <c>*.ternary.png</c>).</summary>
    Probability,
    /// <summary>255 edge, 0 interior, 128 uncertain (read as the caller's uncertain value); any other value is an error. <c>*.ternary.png</c> files.</summary>
    Ternary,
}

/// <summary>Which edge file of an image <see cref="EdgeMapReader.Load"/> prefers, and how a float edge map (raw EdgeKL values have an arbitrary scale) becomes [0, 1].</summary>
public enum EdgeScale
{
    /// <summary>Prefer the ternary PNG (Alg 2; uncertain pixels get the caller's value); a float map found instead is read as <see cref="Soft"/>.</summary>
    Ternary,
    /// <summary>Soft ternary (Alg 2 made continuous): (E − lo) / (hi − lo) clamped to [0, 1] with the thresholds of the ternary rule named in the file's metadata (<c>ternary_rule</c>, else the default rule); Alg 2's edges are 1, its interior 0.</summary>
    Soft,
    /// <summary>Min-max: (E − min) / (max − min).</summary>
    MinMax,
}

/// <summary>
/// Reads edge maps as written by <c>diffegg edges</c> (ternary PNG, float safetensors) or any binary/probability PNG.
/// Convention (<see cref="EdgePngFormat"/>): a <c>*.ternary.png</c> is read as Alg 2 classes, 128 ("uncertain") mapping to <c>uncertainValue</c>
/// (default 0.5, i.e. it counts as an edge for CCL at threshold 0.5 and passes (1-0.5)^β of a clean path's affinity); any other PNG
/// as probabilities v/255, whatever its values. A caller can name the format instead.
/// </summary>
public static class EdgeMapReader
{
    /// <summary>Suffixes tried, in order, after an image's file stem when looking up its edge map.</summary>
    public static readonly string[] Suffixes = { ".ternary.png", ".edges.safetensors", ".png" };

    /// <summary>Edge value of a ternary PNG's "uncertain" (128) pixels unless the caller gives one (<c>refine --uncertain</c>).</summary>
    public const float DefaultUncertain = 0.5f;

    /// <summary>
    /// Finds the edge map of an image stem in a folder: <c>stem.ternary.png</c> (the Alg 2 output of <c>diffegg edges</c>), else
    /// <c>stem.edges.safetensors</c>, else <c>stem.png</c>; with <paramref name="preferFloat"/> the float map comes first. Null if none.
    /// </summary>
    public static string? Find(string dir, string stem, bool preferFloat = false)
    {
        var order = preferFloat ? new[] { ".edges.safetensors", ".ternary.png", ".png" } : Suffixes;
        foreach (var s in order)
        {
            string p = Path.Combine(dir, stem + s);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>
    /// Finds (<see cref="Find"/>; the float map first unless <paramref name="scale"/> is <see cref="EdgeScale.Ternary"/>) and reads the
    /// edge map of <paramref name="stem"/> in <paramref name="dir"/>; throws <see cref="DiffEggException"/> naming the folder and the names tried.
    /// </summary>
    public static (string Path, EdgeMap Map) Load(string dir, string stem, EdgeScale scale, float uncertainValue = DefaultUncertain, EdgePngFormat? pngFormat = null)
    {
        bool preferFloat = scale != EdgeScale.Ternary;
        string path = Find(dir, stem, preferFloat)
            ?? throw new DiffEggException($"{dir}: no edge map for '{stem}' (looked for {string.Join(", ", Suffixes.Select(x => stem + x))})");
        return (path, Read(path, uncertainValue, scale, pngFormat));
    }

    /// <summary>
    /// Reads an edge map (PNG or safetensors with tensor <c>edges</c>) into [0,1] values; throws <see cref="DiffEggException"/> naming the file on
    /// bad input. A float map is scaled by <paramref name="scale"/>: by default <see cref="EdgeScale.Soft"/>, as <see cref="Load"/> and
    /// <c>refine</c> read one by default.
    /// </summary>
    public static EdgeMap Read(string path, float uncertainValue = DefaultUncertain, EdgeScale scale = EdgeScale.Soft, EdgePngFormat? pngFormat = null)
    {
        if (!File.Exists(path)) throw new DiffEggException($"{path}: edge map not found");
        return path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? ReadSafetensors(path, scale) : ReadPng(path, uncertainValue, pngFormat ?? FormatOf(path));
    }

    /// <summary>The format a PNG's name implies: <see cref="EdgePngFormat.Ternary"/> for <c>*.ternary.png</c> (what <c>diffegg edges</c> writes), else <see cref="EdgePngFormat.Probability"/>.</summary>
    public static EdgePngFormat FormatOf(string path) =>
        path.EndsWith(".ternary.png", StringComparison.OrdinalIgnoreCase) ? EdgePngFormat.Ternary : EdgePngFormat.Probability;

    static EdgeMap ReadPng(string path, float uncertainValue, EdgePngFormat format)
    {
        byte[] g = ImageIO.ReadGray(path, out int w, out int h, out _);
        try { return FromGray(g, w, h, format, uncertainValue); }
        catch (ArgumentException e) { throw new DiffEggException($"{path}: {e.Message}"); }   // FromGray's check of the ternary values: the file's fault
    }

    /// <summary>Ternary classes (1 edge, 0 interior, −1 uncertain; row-major) as an edge map, exactly as the written ternary PNG is read.</summary>
    public static EdgeMap FromTernary(ReadOnlySpan<sbyte> ternary, int w, int h, float uncertainValue = DefaultUncertain)
    {
        var g = new byte[ternary.Length];
        for (int i = 0; i < g.Length; i++)
            g[i] = ternary[i] == Edges.TernaryEdges.Edge ? Edges.TernaryEdges.EdgeGray : ternary[i] == Edges.TernaryEdges.Interior ? Edges.TernaryEdges.InteriorGray : Edges.TernaryEdges.UncertainGray;
        return FromGray(g, w, h, EdgePngFormat.Ternary, uncertainValue);
    }

    /// <summary>A ternary tensor <c>[H, W]</c> (int8, as the edge pipelines return it) as an edge map; see <see cref="FromTernary(ReadOnlySpan{sbyte}, int, int, float)"/>.</summary>
    public static EdgeMap FromTernary(TorchSharp.torch.Tensor ternary, int w, int h, float uncertainValue = DefaultUncertain)
    {
        using var c = ternary.contiguous();
        return FromTernary(c.data<sbyte>().ToArray(), w, h, uncertainValue);
    }

    /// <summary>8-bit grey edge values (row-major) as an edge map: v/255, or (<see cref="EdgePngFormat.Ternary"/>) 0 / 1 with 128 → <paramref name="uncertainValue"/>.</summary>
    public static EdgeMap FromGray(byte[] g, int w, int h, EdgePngFormat format, float uncertainValue = DefaultUncertain)
    {
        bool ternary = format == EdgePngFormat.Ternary;
        if (ternary)
            for (int i = 0; i < g.Length; i++)
                if (g[i] != 0 && g[i] != 128 && g[i] != 255)
                    throw new ArgumentException($"a ternary edge map holds only 0, 128 and 255; value {g[i]} at (y={i / w}, x={i % w})");
        var v = new float[g.Length];
        for (int i = 0; i < g.Length; i++)
            v[i] = ternary && g[i] == 128 ? uncertainValue : g[i] / 255f;
        return new EdgeMap(w, h, v);
    }

    static EdgeMap ReadSafetensors(string path, EdgeScale scale)
    {
        DiffEgg.Common.TorchRuntime.EnsureLoaded();
        using var file = DiffEgg.Formats.SafeTensors.SafeTensorsFile.Open(path);
        if (!file.Keys.Contains("edges"))
            throw new DiffEggException($"{path}: safetensors file has no tensor named 'edges'");
        using var t = file.Read("edges", TorchSharp.torch.ScalarType.Float32);
        long[] shape = t.shape;
        var hw = shape.SkipWhile(d => d == 1).ToArray();
        if (shape.Length < 2 || hw.Length > 2 || shape[^1] < 1 || shape[^2] < 1)
            throw new DiffEggException($"{path}: tensor 'edges' has shape [{string.Join(",", shape)}], expected [H,W]");
        int h = (int)shape[^2], w = (int)shape[^1];
        var v = t.data<float>().ToArray();
        // A float map has an arbitrary scale (raw EdgeKL values from `diffegg edges` are ~1e-4..1e-2), so it is
        // scaled to [0,1]: soft ternary (the thresholds of its ternary rule) or min-max (a map already spanning 0..1 is then unchanged).
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        for (int i = 0; i < v.Length; i++)
        {
            float x = v[i];
            if (!float.IsFinite(x) || x < 0)
                throw new DiffEggException($"{path}: tensor 'edges' value {x} at (y={i / w}, x={i % w}) is negative or not finite");
            if (x < min) min = x;
            if (x > max) max = x;
        }
        if (scale != EdgeScale.MinMax)
        {
            // the same ternary rule as the PNG written next to it (metadata of `diffegg edges`; the default rule for other files)
            var rule = DiffEgg.Edges.TernaryRule.Default;
            if (file.Metadata.TryGetValue(DiffEgg.Edges.EdgePipeline.TernaryRuleMetadataKey, out var name))
                rule = DiffEgg.Edges.TernaryRule.TryParse(name)
                    ?? throw new DiffEggException($"{path}: metadata '{DiffEgg.Edges.EdgePipeline.TernaryRuleMetadataKey}' = '{name}' is not a ternary rule ({DiffEgg.Edges.TernaryRule.Names})");
            return new EdgeMap(w, h, DiffEgg.Edges.TernaryEdges.Soft(v, rule));
        }
        float range = max - min;
        for (int i = 0; i < v.Length; i++) v[i] = range > 0 ? (v[i] - min) / range : 0f;
        return new EdgeMap(w, h, v);
    }
}
