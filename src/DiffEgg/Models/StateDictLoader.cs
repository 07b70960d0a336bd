using System.Text;
using DiffEgg.Common;
using DiffEgg.Formats.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Models;

/// <summary>Loads a safetensors state dict into a <see cref="nn.Module"/> by exact parameter/buffer names, reporting every mismatch at once.</summary>
public static class StateDictLoader
{
    /// <summary>Checkpoint keys that are known to be harmless extras (non-persistent buffers written by old exporters).</summary>
    public static readonly IReadOnlySet<string> IgnoredKeys = new HashSet<string> { "text_model.embeddings.position_ids" };

    static readonly (string Old, string New)[] DeprecatedAttention =
    {
        (".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0."),
    };

    /// <summary>Maps deprecated VAE attention names (<c>query/key/value/proj_attn</c>) to <c>to_q/to_k/to_v/to_out.0</c>; other keys unchanged.</summary>
    public static string MapKey(string key)
    {
        if (!key.Contains(".attentions.")) return key;
        foreach (var (o, n) in DeprecatedAttention)
        {
            int i = key.LastIndexOf(o, StringComparison.Ordinal);
            if (i >= 0 && key.IndexOf('.', i + o.Length) < 0) return key[..i] + n + key[(i + o.Length)..];
        }
        return key;
    }

    /// <summary>
    /// Copies every tensor of <paramref name="path"/> into the same-named parameter/buffer of <paramref name="module"/> (converted to its dtype/device).
    /// Throws one <see cref="DiffEggException"/> starting with the file path that lists all missing keys, unexpected keys and shape mismatches.
    /// </summary>
    public static void Load(nn.Module module, string path, string? modelName = null)
    {
        using var file = SafeTensorsFile.Open(path);
        Load(module, file, modelName);
    }

    /// <summary>As <see cref="Load(nn.Module,string,string?)"/>, from an already opened file.</summary>
    public static void Load(nn.Module module, SafeTensorsFile file, string? modelName = null)
    {
        var targets = new Dictionary<string, Tensor>();
        foreach (var (name, p) in module.named_parameters()) targets[name] = p;
        foreach (var (name, b) in module.named_buffers(include_nonpersistent: false)) targets.TryAdd(name, b);

        var plan = new List<(string FileKey, string ModelKey, bool Reshape)>();
        var missing = new HashSet<string>(targets.Keys);
        var unexpected = new List<string>();
        var shapes = new List<string>();
        foreach (var key in file.Keys)
        {
            if (IgnoredKeys.Contains(key)) continue;
            string mk = MapKey(key);
            if (!targets.TryGetValue(mk, out var target)) { unexpected.Add(key); continue; }
            missing.Remove(mk);
            var info = file.Info(key);
            bool same = info.Shape.SequenceEqual(target.shape);
            // Old VAE checkpoints store attention projections as 1×1 convs [C, C, 1, 1].
            bool reshape = !same && mk != key && info.Shape.Length == 4 && info.Shape[2] == 1 && info.Shape[3] == 1
                           && target.shape.Length == 2 && info.Shape[0] == target.shape[0] && info.Shape[1] == target.shape[1];
            if (!same && !reshape)
                shapes.Add($"{key} (file [{string.Join(",", info.Shape)}], model [{string.Join(",", target.shape)}])");
            else
                plan.Add((key, mk, reshape));
        }

        if (missing.Count > 0 || unexpected.Count > 0 || shapes.Count > 0)
        {
            var sb = new StringBuilder();
            sb.Append(file.Path).Append(": weights do not match ").Append(modelName ?? module.GetType().Name).Append(':');
            if (missing.Count > 0) sb.Append($" {missing.Count} missing key(s): ").Append(string.Join(", ", missing.OrderBy(k => k, StringComparer.Ordinal))).Append(';');
            if (unexpected.Count > 0) sb.Append($" {unexpected.Count} unexpected key(s): ").Append(string.Join(", ", unexpected)).Append(';');
            if (shapes.Count > 0) sb.Append($" {shapes.Count} shape mismatch(es): ").Append(string.Join(", ", shapes)).Append(';');
            throw new DiffEggException(sb.ToString().TrimEnd(';'));
        }

        using var _ = torch.no_grad();
        foreach (var (fk, mk, reshape) in plan)
        {
            using var scope = torch.NewDisposeScope();
            var target = targets[mk];
            if (!reshape && target.device_type == DeviceType.CPU && target.is_contiguous()
                && target.dtype == SafeTensorsFile.ToScalarType(file.Info(fk).DType))
            {
                file.ReadInto(fk, target);   // straight from the mapping into the parameter
                continue;
            }
            var t = file.Read(fk, target.dtype);
            if (reshape) t = t.reshape(target.shape);
            target.copy_(t);
        }
    }
}
