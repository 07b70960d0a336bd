using System.Globalization;
using System.Text.Json;
using DiffEgg.Common;

namespace DiffEgg.Models.Config;

/// <summary>Typed, validated access to a diffusers/transformers <c>config.json</c>; every error names the file and the key.</summary>
public sealed class JsonConfig
{
    readonly JsonElement _root;
    readonly HashSet<string> _read = new();
    public string Path { get; }

    JsonConfig(string path, JsonElement root) { Path = path; _root = root; }

    /// <summary>Reads and parses <paramref name="path"/> (must be a JSON object).</summary>
    public static JsonConfig Load(string path)
    {
        if (!File.Exists(path)) throw new DiffEggException($"{path}: config file not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: config must be a JSON object");
            return new JsonConfig(path, doc.RootElement.Clone());
        }
        catch (JsonException e) { throw new DiffEggException($"{path}: invalid JSON ({e.Message})"); }
    }

    /// <summary>Parses JSON text as if it were the file <paramref name="path"/> (for tests and in-memory configs).</summary>
    public static JsonConfig Parse(string path, string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: config must be a JSON object");
            return new JsonConfig(path, doc.RootElement.Clone());
        }
        catch (JsonException e) { throw new DiffEggException($"{path}: invalid JSON ({e.Message})"); }
    }

    public bool Has(string key) => Get(key) is not null;

    JsonElement? Get(string key)
    {
        _read.Add(key);
        return _root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;
    }

    /// <summary>
    /// The file's keys that nothing has read, except metadata (a leading <c>_</c>) and <paramref name="ignored"/> (keys the model knows it
    /// does not need): keys this version of DiffEgg does not know. diffusers warns about such keys as well.
    /// </summary>
    public IReadOnlyList<string> UnknownKeys(IEnumerable<string>? ignored = null)
    {
        var skip = new HashSet<string>(ignored ?? Array.Empty<string>());
        return _root.EnumerateObject().Select(p => p.Name).Where(k => !k.StartsWith('_') && !_read.Contains(k) && !skip.Contains(k)).ToList();
    }

    /// <summary>Reports <see cref="UnknownKeys"/> through <see cref="DiffEggWarnings"/>: "file: unknown keys 'a', 'b' (ignored)".</summary>
    public void WarnUnknownKeys(IEnumerable<string>? ignored = null)
    {
        var unknown = UnknownKeys(ignored);
        if (unknown.Count > 0)
            DiffEggWarnings.Warn($"{Path}: unknown key{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown.Select(k => "'" + k + "'"))} (ignored)");
    }

    public DiffEggException Error(string key, string what) => new($"{Path}: key '{key}': {what}");

    /// <summary>Error "file: key 'k' = v is not supported (supported: …)".</summary>
    public DiffEggException Unsupported(string key, object? value, string supported) =>
        new($"{Path}: key '{key}' = {Show(value)} is not supported (supported: {supported})");

    static string Show(object? v) => v switch
    {
        null => "null",
        string s => "\"" + s + "\"",
        bool b => b ? "true" : "false",
        double d => d.ToString(CultureInfo.InvariantCulture),
        System.Collections.IEnumerable e => "[" + string.Join(",", e.Cast<object?>().Select(Show)) + "]",
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "?",
    };

    /// <summary>Integer value of <paramref name="key"/>, or <paramref name="fallback"/> when absent/null (error when neither).</summary>
    public int Int(string key, int? fallback = null)
    {
        var v = Get(key);
        if (v is null) return fallback ?? throw Error(key, "required integer is missing");
        if (v.Value.ValueKind == JsonValueKind.Number && v.Value.TryGetInt32(out int i)) return i;
        if (v.Value.ValueKind == JsonValueKind.Number && v.Value.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        throw Error(key, $"expected an integer, got {v.Value.GetRawText()}");
    }

    public int? IntOrNull(string key) => Has(key) ? Int(key) : null;

    /// <summary>Number value of <paramref name="key"/>, or <paramref name="fallback"/> when absent/null.</summary>
    public double Double(string key, double? fallback = null)
    {
        var v = Get(key);
        if (v is null) return fallback ?? throw Error(key, "required number is missing");
        if (v.Value.ValueKind == JsonValueKind.Number) return v.Value.GetDouble();
        throw Error(key, $"expected a number, got {v.Value.GetRawText()}");
    }

    /// <summary>Boolean value of <paramref name="key"/>, or <paramref name="fallback"/> when absent/null.</summary>
    public bool Bool(string key, bool fallback)
    {
        var v = Get(key);
        if (v is null) return fallback;
        return v.Value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(key, $"expected true or false, got {v.Value.GetRawText()}"),
        };
    }

    /// <summary>String value of <paramref name="key"/>, or <paramref name="fallback"/> when absent/null.</summary>
    public string? String(string key, string? fallback = null)
    {
        var v = Get(key);
        if (v is null) return fallback;
        if (v.Value.ValueKind == JsonValueKind.String) return v.Value.GetString();
        throw Error(key, $"expected a string, got {v.Value.GetRawText()}");
    }

    /// <summary>True when the key is present with the value null.</summary>
    public bool IsExplicitNull(string key) { _read.Add(key); return _root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Null; }

    /// <summary>List of booleans (empty when absent/null).</summary>
    public bool[] BoolArray(string key)
    {
        var v = Get(key);
        if (v is null) return Array.Empty<bool>();
        if (v.Value.ValueKind != JsonValueKind.Array) throw Error(key, $"expected a list of booleans, got {v.Value.GetRawText()}");
        return v.Value.EnumerateArray().Select(e => e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(key, $"expected a list of booleans, got {v.Value.GetRawText()}"),
        }).ToArray();
    }

    public bool IsArray(string key) => Get(key) is { ValueKind: JsonValueKind.Array };

    /// <summary>List of integers, or <paramref name="fallback"/> when absent/null.</summary>
    public int[] IntArray(string key, int[]? fallback = null)
    {
        var v = Get(key);
        if (v is null) return fallback ?? throw Error(key, "required integer list is missing");
        if (v.Value.ValueKind != JsonValueKind.Array) throw Error(key, $"expected a list of integers, got {v.Value.GetRawText()}");
        return v.Value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i
            : throw Error(key, $"expected a list of integers, got {v.Value.GetRawText()}")).ToArray();
    }

    /// <summary>List of strings, or <paramref name="fallback"/> when absent/null.</summary>
    public string[] StringArray(string key, string[]? fallback = null)
    {
        var v = Get(key);
        if (v is null) return fallback ?? throw Error(key, "required string list is missing");
        if (v.Value.ValueKind != JsonValueKind.Array) throw Error(key, $"expected a list of strings, got {v.Value.GetRawText()}");
        return v.Value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()!
            : throw Error(key, $"expected a list of strings, got {v.Value.GetRawText()}")).ToArray();
    }

    /// <summary>An int that may also be given per block as a list (e.g. attention_head_dim); expands to <paramref name="count"/> entries.</summary>
    public int[] IntOrIntList(string key, int count, int? fallback = null)
    {
        if (IsArray(key))
        {
            var a = IntArray(key);
            if (a.Length != count) throw Error(key, $"has {a.Length} entries but there are {count} blocks");
            return a;
        }
        int x = Int(key, fallback);
        return Enumerable.Repeat(x, count).ToArray();
    }

    /// <summary>Requires the key to be absent/null or equal to one of the allowed values (compared as raw JSON text for scalars).</summary>
    public void RequireNullOr(string key, params object?[] allowed)
    {
        var v = Get(key);
        if (v is null) return;
        object? val = v.Value.ValueKind switch
        {
            JsonValueKind.String => v.Value.GetString(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => v.Value.GetDouble(),
            _ => v.Value.GetRawText(),
        };
        foreach (var a in allowed)
        {
            if (a is string s && val is string vs && s == vs) return;
            if (a is bool b && val is bool vb && b == vb) return;
            if (a is int or double && val is double vd && Convert.ToDouble(a, CultureInfo.InvariantCulture) == vd) return;
        }
        throw Unsupported(key, val, allowed.Length == 0 ? "null" : "null, " + string.Join(", ", allowed.Select(Show)));
    }
}
