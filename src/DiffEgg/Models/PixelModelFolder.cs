using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.Schedulers;
using DiffEgg.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Models;

/// <summary>
/// The pixel-space model folder: the diffusers layout without <c>vae/</c> and without a text encoder.
/// <code>
/// model_index.json                        {"_class_name": "DiffEggPixelPipeline", "pixel_space": true, "null_embedding": "null_embedding.safetensors", ...}
/// unet/config.json                        UNet2DConditionModel config (in_channels = out_channels = 3)
/// unet/diffusion_pytorch_model.safetensors
/// scheduler/scheduler_config.json         DDPMScheduler (scaled_linear, 1000 steps, epsilon)
/// null_embedding.safetensors              key "null_embedding", [1, L, cross_attention_dim]: the conditioning used in place of an empty prompt
/// </code>
/// Images enter the UNet as RGB scaled to [-1, 1].
/// </summary>
public static class PixelModelFolder
{
    /// <summary><c>_class_name</c> written to <c>model_index.json</c>.</summary>
    public const string PipelineClassName = "DiffEggPixelPipeline";
    /// <summary>File name of the stored null embedding.</summary>
    public const string NullEmbeddingFile = "null_embedding.safetensors";
    /// <summary>Tensor key inside <see cref="NullEmbeddingFile"/>.</summary>
    public const string NullEmbeddingKey = "null_embedding";

    /// <summary>
    /// Writes a pixel-space model folder at <paramref name="dir"/>: UNet weights (<paramref name="unetWeights"/> by checkpoint key, or the module's own
    /// when null), configs, model_index.json and the null embedding. Files are written into a temporary sibling folder that then replaces
    /// <paramref name="dir"/> (any other content of an existing <paramref name="dir"/>, such as <c>training/</c>, is kept).
    /// </summary>
    public static void Save(string dir, UNet2DConditionModel unet, Tensor nullEmbedding, DDPMScheduler scheduler, bool fp16,
        IEnumerable<KeyValuePair<string, Tensor>>? unetWeights = null)
    {
        var cfg = unet.Config;
        if (cfg.InChannels != 3 || cfg.OutChannels != 3)
            throw new ArgumentException($"a pixel-space UNet must have in/out channels 3, got {cfg.InChannels}/{cfg.OutChannels}");
        if (nullEmbedding.dim() != 3 || nullEmbedding.shape[0] != 1 || nullEmbedding.shape[2] != cfg.CrossAttentionDim)
            throw new ArgumentException($"null embedding must be [1, L, {cfg.CrossAttentionDim}], got [{string.Join(",", nullEmbedding.shape)}]");
        string full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        string tmp = AtomicFolder.TempSibling(full);
        var dtype = fp16 ? SafeTensorsDType.F16 : SafeTensorsDType.F32;
        try
        {
            Directory.CreateDirectory(Path.Combine(tmp, "unet"));
            Directory.CreateDirectory(Path.Combine(tmp, "scheduler"));
            var weights = unetWeights?.ToList() ?? StateOf(unet);
            SafeTensorsWriter.Save(Path.Combine(tmp, "unet", "diffusion_pytorch_model.safetensors"), weights, dtype);
            SafeTensorsWriter.Save(Path.Combine(tmp, NullEmbeddingFile), new[] { KeyValuePair.Create(NullEmbeddingKey, nullEmbedding) }, dtype);
            AtomicFile.WriteAllText(Path.Combine(tmp, "unet", "config.json"), UNetConfigJson(cfg));
            AtomicFile.WriteAllText(Path.Combine(tmp, "scheduler", "scheduler_config.json"), SchedulerConfigJson(scheduler));
            AtomicFile.WriteAllText(Path.Combine(tmp, "model_index.json"), ModelIndexJson(nullEmbedding.shape[1]));
            AtomicFolder.ReplaceEntries(tmp, full, new[] { "unet", "scheduler", NullEmbeddingFile, "model_index.json" });
        }
        finally
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, true); } catch { /* best effort */ }
        }
    }

    /// <summary>
    /// Reads the stored null embedding of a folder without <c>vae/</c>. Returns null when the folder has no null embedding and is not declared pixel-space
    /// (a text-encoder folder). Throws naming the file when model_index.json declares <c>pixel_space</c> but the file is missing, the key is absent,
    /// the shape is not [1, L, cross_attention_dim], or the UNet is not 3-channel.
    /// </summary>
    public static Tensor? LoadNullEmbedding(string folder, UNet2DConditionConfig unetConfig, bool hasTextEncoder)
    {
        string indexPath = Path.Combine(folder, "model_index.json");
        bool declared = false;
        string file = NullEmbeddingFile;
        if (File.Exists(indexPath))
        {
            var idx = Config.JsonConfig.Load(indexPath);
            declared = idx.Bool("pixel_space", false);
            file = idx.String("null_embedding", NullEmbeddingFile)!;
        }
        string path = Path.Combine(folder, file);
        if (declared && (unetConfig.InChannels != 3 || unetConfig.OutChannels != 3))
            throw new DiffEggException($"{Path.Combine(folder, "unet", "config.json")}: a pixel-space model (model_index.json pixel_space = true) needs in_channels = out_channels = 3, got {unetConfig.InChannels}/{unetConfig.OutChannels}");
        if (!File.Exists(path))
        {
            if (declared && !hasTextEncoder) throw new DiffEggException($"{path}: null embedding file not found (required by a pixel-space model folder without text_encoder/)");
            return null;
        }
        using var st = SafeTensorsFile.Open(path);
        if (!st.Keys.Contains(NullEmbeddingKey)) throw new DiffEggException($"{path}: key '{NullEmbeddingKey}' not found");
        var shape = st.Info(NullEmbeddingKey).Shape;
        if (shape.Length != 3 || shape[0] != 1 || shape[1] < 1 || shape[2] != unetConfig.CrossAttentionDim)
            throw new DiffEggException($"{path}: key '{NullEmbeddingKey}' has shape [{string.Join(",", shape)}], expected [1, L, {unetConfig.CrossAttentionDim}] (the UNet's cross_attention_dim)");
        var t = st.Read(NullEmbeddingKey, ScalarType.Float32);
        bool finite;
        using (var scope = torch.NewDisposeScope()) finite = t.isfinite().all().item<bool>();
        if (!finite) { t.Dispose(); throw new DiffEggException($"{path}: key '{NullEmbeddingKey}' contains NaN or infinite values"); }
        return t;
    }

    /// <summary>The module's persistent parameters and buffers by checkpoint key.</summary>
    public static List<KeyValuePair<string, Tensor>> StateOf(nn.Module module)
    {
        var list = new List<KeyValuePair<string, Tensor>>();
        var seen = new HashSet<string>();
        foreach (var (name, p) in module.named_parameters()) if (seen.Add(name)) list.Add(KeyValuePair.Create(name, (Tensor)p));
        foreach (var (name, b) in module.named_buffers(include_nonpersistent: false)) if (seen.Add(name)) list.Add(KeyValuePair.Create(name, b));
        return list;
    }

    /// <summary>diffusers-style <c>unet/config.json</c> text for <paramref name="c"/> (readable back by <see cref="UNet2DConditionConfig.FromJson"/>).</summary>
    public static string UNetConfigJson(UNet2DConditionConfig c) => Json(w =>
    {
        w.WriteString("_class_name", "UNet2DConditionModel");
        w.WriteString("act_fn", "silu");
        Ints(w, "attention_head_dim", c.AttentionHeads);
        Ints(w, "block_out_channels", c.BlockOutChannels);
        w.WriteBoolean("center_input_sample", c.CenterInputSample);
        w.WriteNumber("conv_in_kernel", c.ConvInKernel);
        w.WriteNumber("conv_out_kernel", c.ConvOutKernel);
        w.WriteNumber("cross_attention_dim", c.CrossAttentionDim);
        Strings(w, "down_block_types", c.DownBlockTypes);
        w.WriteNumber("downsample_padding", c.DownsamplePadding);
        w.WriteBoolean("flip_sin_to_cos", c.FlipSinToCos);
        w.WriteNumber("freq_shift", c.FreqShift);
        w.WriteNumber("in_channels", c.InChannels);
        w.WriteNumber("layers_per_block", c.LayersPerBlock);
        w.WriteNumber("mid_block_scale_factor", c.MidBlockScaleFactor);
        w.WriteNumber("norm_eps", c.NormEps);
        w.WriteNumber("norm_num_groups", c.NormNumGroups);
        w.WriteNumber("out_channels", c.OutChannels);
        w.WriteNumber("sample_size", c.SampleSize);
        if (c.TimeEmbeddingDim is int ted) w.WriteNumber("time_embedding_dim", ted);
        Ints(w, "transformer_layers_per_block", c.TransformerLayersPerBlock);
        Strings(w, "up_block_types", c.UpBlockTypes);
        w.WriteBoolean("upcast_attention", c.UpcastAttention);
        w.WriteBoolean("use_linear_projection", c.UseLinearProjection);
    });

    /// <summary>diffusers-style <c>scheduler/scheduler_config.json</c> text for <paramref name="s"/>.</summary>
    public static string SchedulerConfigJson(DDPMScheduler s) => Json(w =>
    {
        w.WriteString("_class_name", "DDPMScheduler");
        w.WriteNumber("beta_end", s.BetaEnd);
        w.WriteString("beta_schedule", s.BetaSchedule);
        w.WriteNumber("beta_start", s.BetaStart);
        w.WriteBoolean("clip_sample", false);
        w.WriteNumber("num_train_timesteps", s.NumTrainTimesteps);
        w.WriteString("prediction_type", s.PredictionType);
        w.WriteNumber("steps_offset", s.StepsOffset);
        w.WriteString("timestep_spacing", s.TimestepSpacing);
    });

    /// <summary><c>model_index.json</c> text of a pixel-space folder.</summary>
    public static string ModelIndexJson(long nullTokens) => Json(w =>
    {
        w.WriteString("_class_name", PipelineClassName);
        w.WriteBoolean("pixel_space", true);
        w.WriteString("image_range", "[-1, 1] RGB");
        w.WriteString("null_embedding", NullEmbeddingFile);
        w.WriteNumber("null_embedding_tokens", nullTokens);
        w.WriteStartArray("unet"); w.WriteStringValue("diffusers"); w.WriteStringValue("UNet2DConditionModel"); w.WriteEndArray();
        w.WriteStartArray("scheduler"); w.WriteStringValue("diffusers"); w.WriteStringValue("DDPMScheduler"); w.WriteEndArray();
    });

    static string Json(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    static void Ints(Utf8JsonWriter w, string key, int[] values)
    {
        w.WriteStartArray(key);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    static void Strings(Utf8JsonWriter w, string key, string[] values)
    {
        w.WriteStartArray(key);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}
