using System.Text.Json;
using DiffEgg.Attention;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Models;
using DiffEgg.Formats.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Edges;

/// <summary>Options of the training-free edge pipeline (DiffEGG Sec. 3: null text, shared ε, PeakKL over timesteps).</summary>
public sealed record EdgePipelineOptions
{
    /// <summary>Timesteps τ₁ &gt; … &gt; τ_N scanned by PeakKL (Alg 1).</summary>
    public int[] Timesteps { get; init; } = DefaultTimesteps.ToArray();

    /// <summary>
    /// Default timesteps: the single step t = 10 (one UNet pass; PeakKL over one map returns it). On the embedded model PeakKL picked the
    /// last, least noisy step of every low-noise list on all 200 benchmark scenes (200,150,100,50,10 → t = 10), and fixed t = 1…20 give
    /// the same edges within 0.001 F1, so the other passes changed nothing (docs/method-edges.md, "Default timesteps"). Give a list to scan.
    /// </summary>
    public static IReadOnlyList<int> DefaultTimesteps { get; } = Array.AsReadOnly(DefaultTimestepList.Split(',').Select(int.Parse).ToArray());

    /// <summary><see cref="DefaultTimesteps"/> as the command line writes it (for option defaults and help texts).</summary>
    public const string DefaultTimestepList = "10";
    /// <summary>If set, only this timestep is used (no PeakKL).</summary>
    public int? FixedTimestep { get; init; }
    public EdgeMetric Metric { get; init; } = EdgeMetric.KL;
    /// <summary>Long side of the processed image (rounded to a multiple of <see cref="EdgePipeline.SizeMultiple"/>); 0 = the image's own long side.</summary>
    public int Size { get; init; } = 512;
    /// <summary>Seed of the noise ε (the same ε at every timestep).</summary>
    public long Seed { get; init; }
    /// <summary>Thresholding rule of the ternary map (Alg 2); recorded in the written JSON and safetensors metadata.</summary>
    public TernaryRule Ternary { get; init; } = TernaryRule.Default;
    /// <summary>Budget for the temporaries of one block of attention rows in PeakKL and EdgeKL (bytes; <see cref="EdgeKL.DefaultChunkBytes"/>). Results do not depend on it.</summary>
    public long ChunkBytes { get; init; } = EdgeKL.DefaultChunkBytes;
}

/// <summary>Model input of one image (DiffEGG Sec. 3): x₀ <c>[1, C, h, w]</c> and the shared noise ε of the same shape, on the model's device.</summary>
public sealed class EdgeInput(Tensor x0, Tensor eps, int processedWidth, int processedHeight) : IDisposable
{
    /// <summary>Clean latent (or pixels in [-1, 1] for a pixel-space model).</summary>
    public Tensor X0 { get; } = x0;
    /// <summary>Noise ε, the same at every timestep.</summary>
    public Tensor Eps { get; } = eps;
    public int ProcessedWidth { get; } = processedWidth;
    public int ProcessedHeight { get; } = processedHeight;

    /// <summary>Releases x₀ and ε.</summary>
    public void Dispose() { X0.Dispose(); Eps.Dispose(); }
}

/// <summary>Edges of one image: PeakKL's curve and choice, the continuous EdgeKL map and its ternary classes at the original size.</summary>
public sealed class EdgePipelineResult : IDisposable
{
    public required int ChosenTimestep { get; init; }
    public required int[] Timesteps { get; init; }
    public required double[] KlCurve { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required int ProcessedWidth { get; init; }
    public required int ProcessedHeight { get; init; }
    public required int AttentionWidth { get; init; }
    public required int AttentionHeight { get; init; }
    /// <summary>EdgeKL map at the attention resolution [h, w] (float32).</summary>
    public required Tensor EdgesAttention { get; init; }
    /// <summary>EdgeKL map bilinearly resized to the original image size [H, W] (float32).</summary>
    public required Tensor Edges { get; init; }
    /// <summary>Ternary classes (Alg 2) of <see cref="Edges"/>, int8 [H, W].</summary>
    public required Tensor Ternary { get; init; }
    /// <summary>The ternary rule applied to <see cref="Edges"/> (<see cref="TernaryRule.Auto"/> resolved to μ ± σ of E or of ln E).</summary>
    public TernaryRule TernaryApplied { get; init; } = TernaryRule.MuSigma;
    /// <summary>Its thresholds (lo, hi) in EdgeKL units: interior E &lt; lo, edge E &gt; hi.</summary>
    public (double Low, double High) TernaryThresholds { get; init; }

    public void Dispose() { EdgesAttention.Dispose(); Edges.Dispose(); Ternary.Dispose(); }
}

/// <summary>
/// DiffEGG's training-free edge generation over a loaded diffusers model: null-text conditioning (computed once), VAE encoding
/// (mean × scaling factor; pixel space without a VAE), for each timestep x_t = add_noise(x0, ε, t) and a UNet pass whose attn1
/// maps are accumulated (Eq 11-12), PeakKL (Alg 1) picks the map, EdgeKL (Eq 6) gives the edge map, TernaryEdges (Alg 2) the classes.
/// </summary>
public sealed class EdgePipeline : IDisposable
{
    readonly DiffusionModelFolder _model;
    readonly Tensor _cond;

    public EdgePipelineOptions Options { get; }

    /// <summary>Validates the timesteps and computes the null-text conditioning once (DiffEGG conditions on the empty prompt).</summary>
    public EdgePipeline(DiffusionModelFolder model, EdgePipelineOptions options)
    {
        _model = model;
        Options = options;
        var ts = options.FixedTimestep is int f ? new[] { f } : options.Timesteps;
        string option = options.FixedTimestep is null ? nameof(options.Timesteps) : nameof(options.FixedTimestep);
        if (ts.Length == 0) throw new InvalidOptionException(option, "at least one timestep is needed");
        for (int i = 0; i < ts.Length; i++)
        {
            if (ts[i] < 0 || ts[i] >= model.Scheduler.NumTrainTimesteps)
                throw new InvalidOptionException(option, $"timestep {ts[i]} is outside the model's schedule [0, {model.Scheduler.NumTrainTimesteps})");
            if (i > 0 && ts[i] >= ts[i - 1]) throw new InvalidOptionException(option, $"timesteps must strictly decrease, got {ts[i - 1]} then {ts[i]}");
        }
        if (options.Size < 0) throw new InvalidOptionException(nameof(options.Size), $"must be positive (or 0 = the image's own size), got {options.Size}");
        if (model.Vae is null && model.Unet.Config.InChannels != 3)
            throw new DiffEggException($"{model.Path}: no vae/ folder, so the UNet must take 3-channel pixels, but its in_channels is {model.Unet.Config.InChannels}");
        _cond = model.EncodeEmptyPrompt().DetachFromDisposeScope();
    }

    /// <summary>
    /// Granularity of the processed image: VAE factor × UNet factor (8 × 8 = 64 for SD 1.5, 2 × 8 = 16 for the sd15-tiny fixture), so that the
    /// latent halves exactly at every UNet level and all attention resolutions share the image's aspect ratio (needed by Eq 12).
    /// </summary>
    public int SizeMultiple => (_model.Vae?.DownFactor ?? 1) * _model.Unet.DownFactor;

    /// <summary>Processed size: keep aspect, long side ≈ <paramref name="size"/>, both sides rounded to a multiple of <paramref name="multiple"/> (at least one multiple).</summary>
    public static (int Width, int Height) ProcessedSize(int width, int height, int size, int multiple = 8)
    {
        double s = (double)size / Math.Max(width, height);
        int R(double v) => Math.Max(multiple, (int)Math.Round(v / multiple, MidpointRounding.AwayFromZero) * multiple);
        return (R(width * s), R(height * s));
    }

    /// <summary>Processed size of an image: <see cref="ProcessedSize"/> with <see cref="EdgePipelineOptions.Size"/> (0 = the image's own long side) and <see cref="SizeMultiple"/>.</summary>
    public (int Width, int Height) ProcessedSizeOf(int width, int height) =>
        ProcessedSize(width, height, Options.Size > 0 ? Options.Size : Math.Max(width, height), SizeMultiple);

    /// <summary>
    /// DiffEGG Sec. 3 input: x₀ (VAE mean × scaling factor, or the pixels in [-1, 1] for a pixel-space model) of the image resized to
    /// <see cref="ProcessedSizeOf"/>, and the noise ε drawn once from <see cref="EdgePipelineOptions.Seed"/> (shared by every timestep).
    /// </summary>
    public EdgeInput Prepare(RgbImage image)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var device = _model.Device;
        var (pw, ph) = ProcessedSizeOf(image.Width, image.Height);
        var resized = pw == image.Width && ph == image.Height ? image : ImageIO.Resize(image, pw, ph);
        using var s127 = 127.5.ToScalar();   // explicit Scalars (an implicit one may be finalised during the native call)
        using var one = 1.0.ToScalar();
        var pixels = torch.tensor(resized.Pixels, new long[] { ph, pw, 3 }).permute(2, 0, 1).unsqueeze(0)
            .to_type(ScalarType.Float32).div(s127).sub(one).to(device);

        Tensor x0;
        if (_model.Vae is { } vae)
        {
            using var post = vae.Encode(pixels);
            x0 = post.Mean * vae.ScalingFactor;
        }
        else x0 = pixels;

        using var gen = new Generator((ulong)Options.Seed, CPU);
        var eps = torch.randn(x0.shape, dtype: ScalarType.Float32, generator: gen).to(device);
        return new EdgeInput(x0.MoveToOuterDisposeScope(), eps.MoveToOuterDisposeScope(), pw, ph);
    }

    /// <summary>
    /// One UNet pass at timestep <paramref name="timestep"/> on x_t = add_noise(x₀, ε, t) under null-text conditioning, its attn1 maps
    /// computed explicitly and accumulated over resolutions (Eq 11-12): SA_t <c>[h·w, h·w]</c> on the CPU (float32, rows sum to 1) and the
    /// attention grid size. O((h·w)²) memory: the reference for <see cref="CaptureAttention"/>, which <see cref="Run"/> uses.
    /// </summary>
    public (Tensor Map, int Height, int Width) AccumulatedAttention(EdgeInput input, int timestep)
    {
        CheckTimestep(timestep);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var device = _model.Device;
        var xt = _model.Scheduler.AddNoise(input.X0, input.Eps, timestep);
        using var acc = new AttentionAccumulator();
        _model.Unet.forward(xt, torch.tensor(new long[] { timestep }, device: device), _cond, acc);
        var map = acc.Result().to(CPU).reshape(acc.Height * acc.Width, acc.Height * acc.Width);
        return (map.MoveToOuterDisposeScope(), acc.Height, acc.Width);
    }

    /// <summary>
    /// One UNet pass at timestep <paramref name="timestep"/> (as <see cref="AccumulatedAttention"/>) that keeps only each attn1 layer's
    /// queries and keys (the layers run fused attention): SA_t read block by block of grid rows (Eq 11-12, <see cref="QueryKeyAttention"/>);
    /// the caller disposes it.
    /// </summary>
    public QueryKeyAttention CaptureAttention(EdgeInput input, int timestep)
    {
        CheckTimestep(timestep);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var device = _model.Device;
        var xt = _model.Scheduler.AddNoise(input.X0, input.Eps, timestep);
        var qk = new QueryKeyAttention();
        try
        {
            _model.Unet.forward(xt, torch.tensor(new long[] { timestep }, device: device), _cond, qk);
            if (qk.LayerCount == 0) throw new DiffEggException($"{_model.Path}: the UNet has no self-attention (attn1) layer to read edges from");
        }
        catch { qk.Dispose(); throw; }
        return qk;
    }

    void CheckTimestep(int timestep)
    {
        if (timestep < 0 || timestep >= _model.Scheduler.NumTrainTimesteps)
            throw new ArgumentException($"timestep {timestep} is outside [0, {_model.Scheduler.NumTrainTimesteps})");
    }

    /// <summary>Number of UNet passes per image: one per timestep scanned by PeakKL (one with a fixed timestep).</summary>
    public int Passes => Options.FixedTimestep is not null ? 1 : Options.Timesteps.Length;

    /// <summary>Runs the pipeline on one RGB image (DiffEGG Sec. 3, Alg 1 + Eq 6 + Alg 2); <paramref name="onPass"/>(done, total) is called after each UNet pass.</summary>
    public EdgePipelineResult Run(RgbImage image, Action<int, int>? onPass = null)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var input = Prepare(image);
        int pw = input.ProcessedWidth, ph = input.ProcessedHeight;
        var ts = Options.FixedTimestep is int f ? new[] { f } : Options.Timesteps;
        using var peak = new PeakKL { ChunkBytes = Options.ChunkBytes };
        foreach (int t in ts)
        {
            peak.Add(t, CaptureAttention(input, t));
            onPass?.Invoke(peak.Count, ts.Length);
        }
        using var chosen = peak.Result();
        int ah = chosen.Peak.Height, aw = chosen.Peak.Width;
        var edgesAtt = EdgeKL.Compute(chosen.Peak, Options.Metric, chunkBytes: Options.ChunkBytes).to_type(ScalarType.Float32);
        var edges = nn.functional.interpolate(edgesAtt.reshape(1, 1, ah, aw), size: new long[] { image.Height, image.Width },
            mode: InterpolationMode.Bilinear, align_corners: false).reshape(image.Height, image.Width);
        var values = edges.cpu().contiguous().data<float>().ToArray();
        var applied = Options.Ternary.Resolve(values);
        var ternary = TernaryEdges.Classify(edges, applied);
        return new EdgePipelineResult
        {
            ChosenTimestep = chosen.PeakTimestep,
            Timesteps = chosen.Timesteps,
            KlCurve = chosen.Curve,
            Width = image.Width, Height = image.Height,
            ProcessedWidth = pw, ProcessedHeight = ph,
            AttentionWidth = aw, AttentionHeight = ah,
            EdgesAttention = edgesAtt.MoveToOuterDisposeScope(),
            Edges = edges.MoveToOuterDisposeScope(),
            Ternary = ternary.MoveToOuterDisposeScope(),
            TernaryApplied = applied,
            TernaryThresholds = applied.Thresholds(values),
        };
    }

    /// <summary>Metadata key of <c>stem.edges.safetensors</c> naming the ternary rule (<see cref="TernaryRule.Name"/>) the PNG was made with.</summary>
    public const string TernaryRuleMetadataKey = "ternary_rule";

    /// <summary>
    /// Writes <c>stem.ternary.png</c>, <c>stem.edges.safetensors</c> (float32 <c>edges</c> [H, W], metadata with the ternary rule) and
    /// <c>stem.json</c> (method <c>peakkl-edgekl</c>, or <c>edgekl</c> with a fixed timestep) atomically (<see cref="EdgeOutputs.Write"/>).
    /// </summary>
    public void Write(EdgePipelineResult r, string outDir, string stem, string? sourcePath = null)
    {
        EdgeOutputs.Write(outDir, stem, r.Ternary, r.Edges, r.ChosenTimestep, new Dictionary<string, string> { [TernaryRuleMetadataKey] = Options.Ternary.Name }, w =>
        {
            w.WriteString("method", Options.FixedTimestep is null ? "peakkl-edgekl" : "edgekl");
            if (sourcePath is not null) w.WriteString("image", sourcePath);
            w.WriteString("model", _model.Path);
            w.WriteNumber("width", r.Width);
            w.WriteNumber("height", r.Height);
            w.WriteNumber("processed_width", r.ProcessedWidth);
            w.WriteNumber("processed_height", r.ProcessedHeight);
            w.WriteNumber("attention_width", r.AttentionWidth);
            w.WriteNumber("attention_height", r.AttentionHeight);
            w.WriteNumber("chosen_timestep", r.ChosenTimestep);
            if (Options.FixedTimestep is int f) w.WriteNumber("fixed_timestep", f); else w.WriteNull("fixed_timestep");
            w.WriteStartArray("timesteps"); foreach (var t in r.Timesteps) w.WriteNumberValue(t); w.WriteEndArray();
            w.WriteStartArray("kl_curve");
            foreach (var k in r.KlCurve) { if (double.IsFinite(k)) w.WriteNumberValue(k); else w.WriteNullValue(); }
            w.WriteEndArray();
            w.WriteString("metric", Options.Metric.ToString().ToLowerInvariant());
            w.WriteNumber("seed", Options.Seed);
            w.WriteString("ternary_rule", Options.Ternary.Name);
            w.WriteString("ternary_applied", r.TernaryApplied.Name);
            w.WriteStartArray("ternary_thresholds"); w.WriteNumberValue(r.TernaryThresholds.Low); w.WriteNumberValue(r.TernaryThresholds.High); w.WriteEndArray();
        });
    }

    public void Dispose() => _cond.Dispose();
}

/// <summary>The files of one image written by <c>diffegg edges</c> (training-free or one-step): ternary PNG, float edge map, JSON.</summary>
public static class EdgeOutputs
{
    /// <summary>
    /// Writes <c>stem.ternary.png</c> (255 edge, 0 interior, 128 uncertain), <c>stem.edges.safetensors</c> (float32 <c>edges</c> [H, W],
    /// metadata <c>chosen_timestep</c> and <paramref name="metadata"/>) and <c>stem.json</c> (an object whose fields <paramref name="fields"/>
    /// writes), each atomically.
    /// </summary>
    public static void Write(string outDir, string stem, Tensor ternary, Tensor edges, int timestep, IReadOnlyDictionary<string, string>? metadata, Action<Utf8JsonWriter> fields)
    {
        Directory.CreateDirectory(outDir);
        TernaryEdges.WritePng(Path.Combine(outDir, stem + ".ternary.png"), ternary);
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["chosen_timestep"] = timestep.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        foreach (var (k, v) in metadata ?? new Dictionary<string, string>()) meta[k] = v;
        SafeTensorsWriter.Save(Path.Combine(outDir, stem + ".edges.safetensors"), new Dictionary<string, Tensor> { ["edges"] = edges }, metadata: meta);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            fields(w);
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(Path.Combine(outDir, stem + ".json"), ms.ToArray());
    }
}
