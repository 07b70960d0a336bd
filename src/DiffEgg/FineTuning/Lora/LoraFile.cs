using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using DiffEgg.Common;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning.Lora;

/// <summary>
/// LoRA weights in the diffusers/PEFT layout, loadable with diffusers' <c>pipe.load_lora_weights(folder)</c>:
/// file <c>pytorch_lora_weights.safetensors</c>, keys <c>unet.&lt;module path&gt;.lora_A.weight</c> ([r, in], or [r, in, 1, 1] for a 1×1 conv)
/// and <c>unet.&lt;module path&gt;.lora_B.weight</c> ([out, r] / [out, r, 1, 1]), and the header metadata <c>lora_adapter_metadata</c>: JSON with
/// <c>unet.r</c>, <c>unet.lora_alpha</c>, <c>unet.target_modules</c> (full module paths), <c>unet.rank_pattern</c> / <c>unet.alpha_pattern</c>
/// (layers whose rank / alpha differ from the most common one), <c>unet.lora_dropout</c>, <c>unet.use_dora</c> = false, <c>unet.lora_bias</c> = false.
/// Without that metadata diffusers takes alpha = r (scale 1). Reading also accepts the older naming <c>…lora.down.weight</c> /
/// <c>…lora.up.weight</c>, keys without the <c>unet.</c> prefix, and optional per-layer <c>….alpha</c> scalars.
/// </summary>
public static class LoraFile
{
    /// <summary>File name diffusers looks for in an adapter folder.</summary>
    public const string FileName = "pytorch_lora_weights.safetensors";
    /// <summary>Header metadata key of the PEFT LoraConfig (diffusers' LORA_ADAPTER_METADATA_KEY).</summary>
    public const string MetadataKey = "lora_adapter_metadata";
    /// <summary>Component prefix of UNet keys.</summary>
    public const string Prefix = "unet.";

    /// <summary>Writes <paramref name="lora"/> to <paramref name="path"/> (F32 or F16) with the metadata, atomically.</summary>
    public static void Save(string path, UNetLora lora, SafeTensorsDType dtype = SafeTensorsDType.F32)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var l in lora.Layers)
        {
            tensors.Add(KeyValuePair.Create(Prefix + l.Path + ".lora_A.weight", (Tensor)l.A));
            tensors.Add(KeyValuePair.Create(Prefix + l.Path + ".lora_B.weight", (Tensor)l.B));
        }
        SafeTensorsWriter.Save(path, tensors, dtype, new Dictionary<string, string> { ["format"] = "pt", [MetadataKey] = MetadataJson(lora) });
    }

    /// <summary>The <c>lora_adapter_metadata</c> JSON (keys sorted, 2-space indent, as diffusers writes it).</summary>
    public static string MetadataJson(UNetLora lora)
    {
        var layers = lora.Layers;
        int r = MostCommon(layers.Select(l => l.Rank));
        double alpha = MostCommon(layers.Select(l => l.Alpha));
        var entries = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            [Prefix + "alpha_pattern"] = w => { w.WriteStartObject(); foreach (var l in layers.Where(l => l.Alpha != alpha)) Number(w, l.Path, l.Alpha); w.WriteEndObject(); },
            [Prefix + "lora_alpha"] = w => NumberValue(w, alpha),
            [Prefix + "lora_bias"] = w => w.WriteBooleanValue(false),
            [Prefix + "lora_dropout"] = w => NumberValue(w, lora.Dropout),
            [Prefix + "r"] = w => w.WriteNumberValue(r),
            [Prefix + "rank_pattern"] = w => { w.WriteStartObject(); foreach (var l in layers.Where(l => l.Rank != r)) w.WriteNumber(l.Path, l.Rank); w.WriteEndObject(); },
            [Prefix + "target_modules"] = w => { w.WriteStartArray(); foreach (var l in layers) w.WriteStringValue(l.Path); w.WriteEndArray(); },
            [Prefix + "use_dora"] = w => w.WriteBooleanValue(false),
        };
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            foreach (var (k, write) in entries) { w.WritePropertyName(k); write(w); }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    static T MostCommon<T>(IEnumerable<T> values) where T : notnull =>
        values.GroupBy(v => v).OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key).First().Key;

    static void Number(Utf8JsonWriter w, string name, double v) { w.WritePropertyName(name); NumberValue(w, v); }

    static void NumberValue(Utf8JsonWriter w, double v)
    {
        if (v == Math.Floor(v) && Math.Abs(v) < 1e15) w.WriteNumberValue((long)v); else w.WriteNumberValue(v);
    }

    /// <summary>
    /// Reads a LoRA file and attaches its layers to <paramref name="unet"/>. Every problem is one <see cref="DiffEggException"/> naming the file
    /// and the key: unknown key naming, a module path the UNet has no adaptable projection for, a missing A or B, a shape that does not fit the
    /// layer, a rank that disagrees with the metadata, NaN/Inf values, malformed metadata.
    /// </summary>
    public static UNetLora Load(string path, UNet2DConditionModel unet)
    {
        using var f = SafeTensorsFile.Open(path);
        var meta = ReadMetadata(f);
        var siteList = UNetLora.Sites(unet, LoraTargets.Attention | LoraTargets.Projections | LoraTargets.FeedForward);
        var sites = siteList.ToDictionary(s => s.Path);
        var order = siteList.Select((s, i) => (s.Path, i)).ToDictionary(x => x.Path, x => x.i);

        // layers in UNet module order (as attached by UNetLora.Attach)
        var pairs = new SortedDictionary<string, (string? A, string? B, string? Alpha)>(Comparer<string>.Create((a, b) => order[a].CompareTo(order[b])));
        foreach (var key in f.Keys)
        {
            string k = key.StartsWith(Prefix, StringComparison.Ordinal) ? key[Prefix.Length..] : key;
            if (k.StartsWith("text_encoder", StringComparison.Ordinal) || k.StartsWith("transformer.", StringComparison.Ordinal))
                throw new DiffEggException($"{path}: key '{key}': only UNet LoRA layers are supported (keys 'unet.<module path>.lora_A.weight' / '.lora_B.weight')");
            string? modulePath; char part;
            if (Strip(k, ".lora_A.weight", out modulePath) || Strip(k, ".lora.down.weight", out modulePath)) part = 'A';
            else if (Strip(k, ".lora_B.weight", out modulePath) || Strip(k, ".lora.up.weight", out modulePath)) part = 'B';
            else if (Strip(k, ".alpha", out modulePath)) part = 'a';
            else throw new DiffEggException($"{path}: key '{key}': not a LoRA weight (expected 'unet.<module path>.lora_A.weight' / '.lora_B.weight', or the older '.lora.down.weight' / '.lora.up.weight')");
            if (!sites.ContainsKey(modulePath!))
                throw new DiffEggException($"{path}: key '{key}': the UNet has no projection '{modulePath}' that can carry LoRA (Linear / 1×1 conv layers of its transformer blocks)");
            var cur = pairs.GetValueOrDefault(modulePath!);
            if ((part == 'A' && cur.A is not null) || (part == 'B' && cur.B is not null))
                throw new DiffEggException($"{path}: key '{key}': layer '{modulePath}' has this factor twice (both LoRA namings?)");
            pairs[modulePath!] = part switch { 'A' => cur with { A = key }, 'B' => cur with { B = key }, _ => cur with { Alpha = key } };
        }
        if (pairs.Count == 0) throw new DiffEggException($"{path}: no LoRA weights in the file");

        var loaded = new List<(string Path, int Rank, double Alpha, Tensor A, Tensor B)>();
        try
        {
            var targets = (LoraTargets)0;
            foreach (var (modulePath, (aKey, bKey, alphaKey)) in pairs)
            {
                if (aKey is null) throw new DiffEggException($"{path}: key '{Prefix}{modulePath}.lora_A.weight' not found (layer '{modulePath}' has only {bKey ?? alphaKey})");
                if (bKey is null) throw new DiffEggException($"{path}: key '{Prefix}{modulePath}.lora_B.weight' not found (layer '{modulePath}' has only {aKey})");
                var site = sites[modulePath];
                var (w, isConv) = LoraLayer.BaseWeightOf(modulePath, site.Projection);
                long outF = w.shape[0], inF = w.shape[1];
                var aShape = f.Info(aKey).Shape;
                var bShape = f.Info(bKey).Shape;
                string S(long[] s) => "[" + string.Join(",", s) + "]";
                bool aOk = (aShape.Length == 2 || (aShape.Length == 4 && aShape[2] == 1 && aShape[3] == 1 && isConv)) && aShape[1] == inF && aShape[0] >= 1;
                if (!aOk)
                    throw new DiffEggException($"{path}: key '{aKey}' has shape {S(aShape)}, but layer '{modulePath}' takes {inF} inputs (expected [r, {inF}]{(isConv ? $" or [r, {inF}, 1, 1]" : "")})");
                long rank = aShape[0];
                bool bOk = (bShape.Length == 2 || (bShape.Length == 4 && bShape[2] == 1 && bShape[3] == 1 && isConv)) && bShape[0] == outF && bShape[1] == rank;
                if (!bOk)
                    throw new DiffEggException($"{path}: key '{bKey}' has shape {S(bShape)}, expected [{outF}, {rank}]{(isConv ? $" or [{outF}, {rank}, 1, 1]" : "")} (layer '{modulePath}' has {outF} outputs, '{aKey}' rank {rank})");
                if (rank > Math.Min(inF, outF))
                    throw new DiffEggException($"{path}: key '{aKey}' has rank {rank}, more than layer '{modulePath}' allows (min(in {inF}, out {outF}))");
                if (meta is not null)
                {
                    int metaRank = meta.RankOf(modulePath);
                    if (metaRank != rank)
                        throw new DiffEggException($"{path}: key '{aKey}' has rank {rank} (shape {S(aShape)}), but the metadata '{MetadataKey}' gives r = {metaRank} for '{modulePath}'");
                }
                double alpha;
                if (alphaKey is not null)
                {
                    using var at = f.Read(alphaKey, ScalarType.Float64);
                    if (at.numel() != 1) throw new DiffEggException($"{path}: key '{alphaKey}' has shape {S(f.Info(alphaKey).Shape)}, expected a scalar alpha");
                    alpha = at.reshape(1)[0].item<double>();
                }
                else alpha = meta?.AlphaOf(modulePath) ?? rank;
                if (!(alpha > 0) || double.IsInfinity(alpha))
                    throw new DiffEggException($"{path}: layer '{modulePath}': alpha {alpha.ToString(CultureInfo.InvariantCulture)} must be a positive number");
                var a = f.Read(aKey, ScalarType.Float32);
                var b = f.Read(bKey, ScalarType.Float32);
                loaded.Add((modulePath, (int)rank, alpha, a, b));
                foreach (var (key, t) in new[] { (aKey, a), (bKey, b) })
                {
                    bool finite;
                    using (var scope = torch.NewDisposeScope()) finite = t.isfinite().all().item<bool>();
                    if (!finite) throw new DiffEggException($"{path}: key '{key}' contains NaN or infinite values");
                }
                targets |= modulePath.Contains(".attn") ? LoraTargets.Attention : modulePath.Contains(".ff.") ? LoraTargets.FeedForward : LoraTargets.Projections;
            }
            return UNetLora.AttachLoaded(unet, targets, loaded);
        }
        finally
        {
            foreach (var l in loaded) { l.A.Dispose(); l.B.Dispose(); }
        }
    }

    static bool Strip(string key, string suffix, out string? modulePath)
    {
        if (key.EndsWith(suffix, StringComparison.Ordinal) && key.Length > suffix.Length) { modulePath = key[..^suffix.Length]; return true; }
        modulePath = null;
        return false;
    }

    /// <summary>The parts of the PEFT LoraConfig DiffEgg uses: r, lora_alpha and their per-layer patterns.</summary>
    sealed class Metadata
    {
        public int R;
        public double Alpha;
        public List<(string Pattern, int Rank)> RankPattern = new();
        public List<(string Pattern, double Alpha)> AlphaPattern = new();

        public int RankOf(string modulePath) => Match(RankPattern, modulePath) is { } i ? RankPattern[i].Rank : R;
        public double AlphaOf(string modulePath) => Match(AlphaPattern, modulePath) is { } i ? AlphaPattern[i].Alpha : Alpha;

        // PEFT's get_pattern_key: the first pattern p with re.match(rf"(.*\.)?({p})$", module path).
        static int? Match<T>(List<(string Pattern, T)> patterns, string modulePath)
        {
            for (int i = 0; i < patterns.Count; i++)
            {
                try
                {
                    if (Regex.IsMatch(modulePath, "^(.*\\.)?(" + patterns[i].Pattern + ")$", RegexOptions.None, TimeSpan.FromSeconds(1))) return i;
                }
                catch (ArgumentException) { if (patterns[i].Pattern == modulePath) return i; }
            }
            return null;
        }
    }

    static Metadata? ReadMetadata(SafeTensorsFile f)
    {
        if (!f.Metadata.TryGetValue(MetadataKey, out var json)) return null;
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{f.Path}: metadata '{MetadataKey}' must be a JSON object");
            JsonElement Get(string name, bool required)
            {
                if (root.TryGetProperty(Prefix + name, out var e) && e.ValueKind != JsonValueKind.Null) return e;
                if (required) throw new DiffEggException($"{f.Path}: metadata '{MetadataKey}' has no '{Prefix}{name}'");
                return default;
            }
            var m = new Metadata { R = Get("r", true).GetInt32() };
            var alpha = Get("lora_alpha", false);
            m.Alpha = alpha.ValueKind == JsonValueKind.Number ? alpha.GetDouble() : m.R;
            var rp = Get("rank_pattern", false);
            if (rp.ValueKind == JsonValueKind.Object) foreach (var p in rp.EnumerateObject()) m.RankPattern.Add((p.Name, p.Value.GetInt32()));
            var ap = Get("alpha_pattern", false);
            if (ap.ValueKind == JsonValueKind.Object) foreach (var p in ap.EnumerateObject()) m.AlphaPattern.Add((p.Name, p.Value.GetDouble()));
            if (root.TryGetProperty(Prefix + "use_dora", out var dora) && dora.ValueKind == JsonValueKind.True)
                throw new DiffEggException($"{f.Path}: metadata '{MetadataKey}': '{Prefix}use_dora' = true is not supported (plain LoRA only)");
            return m;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new DiffEggException($"{f.Path}: metadata '{MetadataKey}' is not a valid LoRA config ({e.Message})");
        }
    }
}
