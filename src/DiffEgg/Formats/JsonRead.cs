using System.Text.Json;
using DiffEgg.Common;

namespace DiffEgg.Formats;

/// <summary>Strict JSON field access: every failure is one <see cref="DiffEggException"/> naming the file, the record and the field.</summary>
internal readonly struct JsonRead
{
    public readonly string File;
    public JsonRead(string file) => File = file;

    public static JsonDocument Parse(string path)
    {
        if (!System.IO.File.Exists(path)) throw new DiffEggException($"{path}: file not found");
        using var fs = System.IO.File.OpenRead(path);
        return Parse(path, fs);
    }

    /// <summary>The whole file as bytes (for the one-pass readers); a missing file is a <see cref="DiffEggException"/>.</summary>
    public static byte[] ReadBytes(string path)
    {
        if (!System.IO.File.Exists(path)) throw new DiffEggException($"{path}: file not found");
        return System.IO.File.ReadAllBytes(path);
    }

    /// <summary>Parses JSON already read from <paramref name="path"/> (a leading UTF-8 BOM is skipped, as when parsing the file).</summary>
    public static JsonDocument Parse(string path, byte[] bytes) => Parse(path, new MemoryStream(bytes, writable: false));

    static JsonDocument Parse(string path, Stream stream)
    {
        try
        {
            return JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            throw new DiffEggException($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>Deepest nesting accepted.</summary>
    public const int MaxDepth = 256;

    public DiffEggException Error(string record, string field, string problem) =>
        new($"{File}: {record}: field '{field}': {problem}");

    public DiffEggException Error(string record, string problem) => new($"{File}: {record}: {problem}");

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };

    public JsonElement Required(JsonElement obj, string field, string record)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw Error(record, $"expected an object, got {Kind(obj)}");
        if (!obj.TryGetProperty(field, out var v)) throw Error(record, field, "missing");
        return v;
    }

    public bool TryGet(JsonElement obj, string field, out JsonElement value)
    {
        value = default;
        return obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(field, out value) && value.ValueKind != JsonValueKind.Null;
    }

    public JsonElement Array(JsonElement obj, string field, string record)
    {
        var v = Required(obj, field, record);
        if (v.ValueKind != JsonValueKind.Array) throw Error(record, field, $"expected an array, got {Kind(v)}");
        return v;
    }

    public long Int64(JsonElement obj, string field, string record) => AsInt64(Required(obj, field, record), field, record);

    public long AsInt64(JsonElement v, string field, string record)
    {
        if (v.ValueKind != JsonValueKind.Number) throw Error(record, field, $"expected an integer, got {Kind(v)}");
        if (v.TryGetInt64(out long l)) return l;
        // accept integral floats such as 3.0 (common in files written by numpy)
        if (v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e15) return (long)d;
        throw Error(record, field, $"expected an integer, got {v.GetRawText()}");
    }

    public int Int32(JsonElement obj, string field, string record)
    {
        long l = Int64(obj, field, record);
        if (l < int.MinValue || l > int.MaxValue) throw Error(record, field, $"value {l} is out of range");
        return (int)l;
    }

    public double Double(JsonElement obj, string field, string record) => AsDouble(Required(obj, field, record), field, record);

    public double AsDouble(JsonElement v, string field, string record)
    {
        if (v.ValueKind != JsonValueKind.Number) throw Error(record, field, $"expected a number, got {Kind(v)}");
        // TryGetDouble is false for a number beyond the double range (1e400), where GetDouble would throw a FormatException
        if (!v.TryGetDouble(out double d) || !double.IsFinite(d)) throw Error(record, field, $"value {v.GetRawText()} is not finite");
        return d;
    }

    /// <summary>0/1 flags written as numbers or booleans.</summary>
    public int Flag(JsonElement obj, string field, string record)
    {
        var v = Required(obj, field, record);
        if (v.ValueKind == JsonValueKind.True) return 1;
        if (v.ValueKind == JsonValueKind.False) return 0;
        return (int)Math.Clamp(AsInt64(v, field, record), int.MinValue, int.MaxValue);
    }

    public string String(JsonElement obj, string field, string record)
    {
        var v = Required(obj, field, record);
        if (v.ValueKind != JsonValueKind.String) throw Error(record, field, $"expected a string, got {Kind(v)}");
        return v.GetString()!;
    }

    public string? OptString(JsonElement obj, string field, string record) =>
        TryGet(obj, field, out _) ? String(obj, field, record) : null;

    public double[] DoubleArray(JsonElement v, string field, string record, int? length = null)
    {
        if (v.ValueKind != JsonValueKind.Array) throw Error(record, field, $"expected an array of numbers, got {Kind(v)}");
        int n = v.GetArrayLength();
        if (length is int L && n != L) throw Error(record, field, $"expected {L} numbers, got {n}");
        var r = new double[n];
        int i = 0;
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number) throw Error(record, $"{field}[{i}]", $"expected a number, got {Kind(e)}");
            if (!e.TryGetDouble(out r[i]) || !double.IsFinite(r[i])) throw Error(record, $"{field}[{i}]", $"value {e.GetRawText()} is not finite");
            i++;
        }
        return r;
    }
}
