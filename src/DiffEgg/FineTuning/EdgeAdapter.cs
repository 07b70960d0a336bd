using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.FineTuning.Lora;
using DiffEgg.Models;
using DiffEgg.Models.Config;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning;

/// <summary>
/// The adapter folder written by <c>diffegg finetune</c> and read by <c>diffegg edges --adapter DIR</c>:
/// <code>
/// pytorch_lora_weights.safetensors   LoRA of the UNet in the diffusers/PEFT layout (LoraFile; pipe.load_lora_weights(DIR) reads it)
/// edge_generator.safetensors         G_φ weights (EdgeGenerator parameter names)
/// config.json                        {"_class_name": "DiffEggEdgeAdapter", "timestep": τ, "up_blocks": [...], "in_channels": [...],
///                                     "fpn_channels": D, "norm_num_groups": G, "edge_threshold": 0.5, "size": S, ...}
/// training/                          loss.csv, loss.png (written by the trainer; not needed to use the adapter)
/// </code>
/// </summary>
public sealed class EdgeAdapter : IDisposable
{
    /// <summary><c>_class_name</c> of config.json.</summary>
    public const string ClassName = "DiffEggEdgeAdapter";
    public const string ConfigFile = "config.json";
    public const string GeneratorFile = "edge_generator.safetensors";
    /// <summary>One-step ternary rule: edge where the edge probability is at least this, interior below it.</summary>
    public const double DefaultEdgeThreshold = 0.5;

    public UNetLora Lora { get; }
    public EdgeGenerator Generator { get; }
    /// <summary>τ of the one UNet pass (0 in the paper's Alg 3).</summary>
    public int Timestep { get; }
    public double EdgeThreshold { get; }
    /// <summary>
    /// Long side of the processed image the adapter was trained at (config key <c>size</c>): the one-step commands process images at this
    /// size unless told otherwise. Null for adapters written without the key: the model's native size.
    /// </summary>
    public int? Size { get; init; }
    /// <summary>The folder this adapter was loaded from (null for a fresh one).</summary>
    public string? Path { get; private init; }

    EdgeAdapter(UNetLora lora, EdgeGenerator generator, int timestep, double threshold)
    {
        Lora = lora; Generator = generator; Timestep = timestep; EdgeThreshold = threshold;
    }

    /// <summary>
    /// A fresh adapter for <paramref name="unet"/>: LoRA layers with B = 0 (the UNet is unchanged) and G_φ initialised from
    /// <paramref name="seed"/> (torch's global generator is seeded here).
    /// </summary>
    public static EdgeAdapter Create(UNet2DConditionModel unet, LoraOptions lora, int fpnChannels, int timestep, long seed, int? size = null,
        double edgeThreshold = DefaultEdgeThreshold)
    {
        TorchRuntime.EnsureLoaded();
        var l = UNetLora.Attach(unet, lora with { Seed = seed });
        try
        {
            torch.manual_seed(seed);
            var g = new EdgeGenerator(EdgeGeneratorConfig.For(unet, fpnChannels, (int)System.Numerics.BigInteger.GreatestCommonDivisor(8, fpnChannels)));
            using (var scope = torch.NewDisposeScope())
                foreach (var (name, p) in g.named_parameters())
                    if (!p.isfinite().all().item<bool>())
                    {
                        g.Dispose();
                        throw new DiffEggException($"freshly built edge generator: parameter '{name}' is not finite (uninitialised memory?)");
                    }
            return new EdgeAdapter(l, g, timestep, edgeThreshold) { Size = size };
        }
        catch { l.Dispose(); throw; }
    }

    /// <summary>Trainable parameters: the LoRA factors, then G_φ's.</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> Parameters() => Lora.Parameters().Concat(Generator.parameters());

    /// <summary>All trainable tensors by a unique name (LoRA keys as in the file, G_φ keys prefixed <c>edge_generator.</c>) — the checkpoint layout.</summary>
    public List<KeyValuePair<string, Tensor>> NamedTensors()
    {
        var list = new List<KeyValuePair<string, Tensor>>();
        foreach (var l in Lora.Layers)
        {
            list.Add(KeyValuePair.Create(LoraFile.Prefix + l.Path + ".lora_A.weight", (Tensor)l.A));
            list.Add(KeyValuePair.Create(LoraFile.Prefix + l.Path + ".lora_B.weight", (Tensor)l.B));
        }
        foreach (var (k, t) in Generator.NamedTensors()) list.Add(KeyValuePair.Create("edge_generator." + k, t));
        return list;
    }

    /// <summary>Copies every tensor of <see cref="NamedTensors"/> from a file (checkpoint resume); missing keys or shape mismatches name the key.</summary>
    public void LoadTensors(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        using var _ = torch.no_grad();
        foreach (var (k, t) in NamedTensors())
        {
            if (!f.Contains(k)) throw new DiffEggException($"{path}: key '{k}' not found");
            var info = f.Info(k);
            if (!info.Shape.SequenceEqual(t.shape))
                throw new DiffEggException($"{path}: key '{k}' has shape [{string.Join(",", info.Shape)}], expected [{string.Join(",", t.shape)}]");
            using var v = f.Read(k, t.dtype);
            t.copy_(v);
        }
    }

    /// <summary>
    /// Writes the adapter folder: LoRA file, G_φ weights and config.json (with <paramref name="extra"/> entries such as the training options),
    /// into a temporary sibling folder first, then moved into <paramref name="dir"/> (other content of <paramref name="dir"/> such as
    /// <c>training/</c> is kept).
    /// </summary>
    public void Save(string dir, SafeTensorsDType dtype = SafeTensorsDType.F16, IReadOnlyDictionary<string, string>? extra = null)
    {
        string full = System.IO.Path.GetFullPath(dir).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        string tmp = AtomicFolder.TempSibling(full);
        try
        {
            Directory.CreateDirectory(tmp);
            LoraFile.Save(System.IO.Path.Combine(tmp, LoraFile.FileName), Lora, dtype);
            SafeTensorsWriter.Save(System.IO.Path.Combine(tmp, GeneratorFile), Generator.NamedTensors(), dtype);
            AtomicFile.WriteAllText(System.IO.Path.Combine(tmp, ConfigFile), ConfigJson(extra));
            AtomicFolder.ReplaceEntries(tmp, full, new[] { LoraFile.FileName, GeneratorFile, ConfigFile });
        }
        finally
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, true); } catch { /* best effort */ }
        }
    }

    string ConfigJson(IReadOnlyDictionary<string, string>? extra)
    {
        var c = Generator.Config;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("_class_name", ClassName);
            w.WriteString("lora_weights", LoraFile.FileName);
            w.WriteString("edge_generator_weights", GeneratorFile);
            w.WriteNumber("timestep", Timestep);
            w.WriteStartArray("up_blocks"); foreach (var u in c.UpBlocks) w.WriteNumberValue(u); w.WriteEndArray();
            w.WriteStartArray("in_channels"); foreach (var u in c.InChannels) w.WriteNumberValue(u); w.WriteEndArray();
            w.WriteNumber("fpn_channels", c.FpnChannels);
            w.WriteNumber("norm_num_groups", c.NormGroups);
            w.WriteNumber("edge_threshold", EdgeThreshold);
            if (Size is int size) w.WriteNumber("size", size);
            if (extra is not null)
            {
                w.WriteStartObject("training");
                foreach (var (k, v) in extra) w.WriteString(k, v);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>
    /// Loads an adapter folder onto <paramref name="unet"/> (the LoRA layers are attached to it). Errors name the file and key: a missing
    /// file, a config.json that does not fit the UNet, LoRA keys or G_φ tensors with the wrong names or shapes.
    /// </summary>
    public static EdgeAdapter Load(string dir, UNet2DConditionModel unet)
    {
        TorchRuntime.EnsureLoaded();
        if (!Directory.Exists(dir)) throw new DiffEggException($"{dir}: adapter folder not found");
        string cfgPath = System.IO.Path.Combine(dir, ConfigFile);
        if (!File.Exists(cfgPath)) throw new DiffEggException($"{cfgPath}: adapter config not found (an adapter folder holds {LoraFile.FileName}, {GeneratorFile} and {ConfigFile})");
        var cfg = JsonConfig.Load(cfgPath);
        string cls = cfg.String("_class_name", "")!;
        if (cls != ClassName) throw cfg.Error("_class_name", $"'{cls}' is not {ClassName}");
        int timestep = cfg.Int("timestep", 0);
        double threshold = cfg.Double("edge_threshold", DefaultEdgeThreshold);
        if (!(threshold > 0 && threshold < 1)) throw cfg.Error("edge_threshold", $"{threshold} must lie in (0, 1)");
        int? size = cfg.Has("size") ? cfg.Int("size") : null;
        if (size is < 8) throw cfg.Error("size", $"{size} must be at least 8 (the long side of the processed image, in pixels)");
        var gc = new EdgeGeneratorConfig
        {
            UpBlocks = cfg.IntArray("up_blocks"),
            InChannels = cfg.IntArray("in_channels"),
            FpnChannels = cfg.Int("fpn_channels"),
            NormGroups = cfg.Int("norm_num_groups"),
        };
        gc.Validate(cfgPath);
        gc.CheckAgainst(unet, cfgPath);
        string loraPath = System.IO.Path.Combine(dir, cfg.String("lora_weights", LoraFile.FileName)!);
        string genPath = System.IO.Path.Combine(dir, cfg.String("edge_generator_weights", GeneratorFile)!);
        if (!File.Exists(loraPath)) throw new DiffEggException($"{loraPath}: LoRA weights not found");
        if (!File.Exists(genPath)) throw new DiffEggException($"{genPath}: edge generator weights not found");
        var lora = LoraFile.Load(loraPath, unet);
        EdgeGenerator? gen = null;
        try
        {
            gen = new EdgeGenerator(gc);
            StateDictLoader.Load(gen, genPath, "the edge generator (G_φ)");
            gen.to(unet.parameters().First().device);   // beside the UNet (e.g. --device cuda)
            using (var scope = torch.NewDisposeScope())
                foreach (var (name, p) in gen.named_parameters())
                    if (!p.isfinite().all().item<bool>()) throw new DiffEggException($"{genPath}: key '{name}' contains NaN or infinite values");
            gen.eval();
            return new EdgeAdapter(lora, gen, timestep, threshold) { Path = dir, Size = size };
        }
        catch
        {
            gen?.Dispose();
            lora.Dispose();
            throw;
        }
    }

    /// <summary>Detaches the LoRA layers from the UNet and releases G_φ.</summary>
    public void Dispose()
    {
        Lora.Dispose();
        Generator.Dispose();
    }
}
