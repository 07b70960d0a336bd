using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning;

/// <summary>One-step edges of one image: the edge probability map and its two classes at the original size.</summary>
public sealed class OneStepEdgeResult : IDisposable
{
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required int ProcessedWidth { get; init; }
    public required int ProcessedHeight { get; init; }
    /// <summary>Edge probability σ(G_φ) at the processed size [h, w] (float32).</summary>
    public required Tensor ProbabilityProcessed { get; init; }
    /// <summary>Edge probability resized bilinearly to the original image size [H, W] (float32).</summary>
    public required Tensor Edges { get; init; }
    /// <summary>Classes of <see cref="Edges"/>: 1 (edge, p ≥ threshold) or 0 (interior), int8 [H, W].</summary>
    public required Tensor Ternary { get; init; }

    public void Dispose() { ProbabilityProcessed.Dispose(); Edges.Dispose(); Ternary.Dispose(); }
}

/// <summary>
/// DiffEGG's one-step edges (Alg 3 at inference): ONE UNet pass (with the adapter's LoRA) at τ on x_τ = √ᾱ_τ·x₀ + √(1−ᾱ_τ)·ε under null
/// conditioning, G_φ on its decoder features, p = σ(logit) at the processed size, resized to the image. The ternary PNG marks the
/// one-pixel skeleton (<see cref="Edges.Thinning.ZhangSuen"/>) of p ≥ the adapter's <c>edge_threshold</c> (0.5) as edge and the rest as
/// interior (no uncertain class). Input preparation (resize, VAE encoding,
/// the noise from the seed) is the training-free pipeline's (<see cref="EdgePipeline.Prepare"/>).
/// </summary>
public sealed class OneStepEdgePipeline : IDisposable
{
    readonly DiffusionModelFolder _model;
    readonly EdgeAdapter _adapter;
    readonly EdgePipeline _prepare;
    readonly Tensor _cond;

    public EdgePipelineOptions Options { get; }

    /// <summary>
    /// <paramref name="options"/>' Size and Seed are used (timesteps and metric are not). The adapter's LoRA layers are switched on only
    /// during <see cref="Run"/>, so the same UNet can serve the training-free pipeline in between.
    /// </summary>
    public OneStepEdgePipeline(DiffusionModelFolder model, EdgeAdapter adapter, EdgePipelineOptions options)
    {
        _model = model;
        _adapter = adapter;
        if (adapter.Timestep >= model.Scheduler.NumTrainTimesteps)
            throw new DiffEggException($"{adapter.Path}: timestep {adapter.Timestep} is outside [0, {model.Scheduler.NumTrainTimesteps})");
        Options = options with { FixedTimestep = adapter.Timestep };
        _prepare = new EdgePipeline(model, Options);
        _adapter.Lora.Enabled = false;
        _adapter.Generator.eval();
        _cond = model.EncodeEmptyPrompt().DetachFromDisposeScope();
    }

    /// <summary>Processed size of an image (as the training-free pipeline).</summary>
    public (int Width, int Height) ProcessedSizeOf(int width, int height) => _prepare.ProcessedSizeOf(width, height);

    /// <summary>Default images per batched pass: as many as fit 16,384 processed pixels, 1 to 16 (16 at 32×32, 4 at 64×64, 1 from 128×128; larger batches measured no faster on 2 CPU threads and need more memory).</summary>
    public static int DefaultBatch(int processedWidth, int processedHeight) =>
        (int)Math.Clamp(16384L / Math.Max(1L, (long)processedWidth * processedHeight), 1, 16);

    /// <summary>Runs the one-step edges on one RGB image.</summary>
    public OneStepEdgeResult Run(RgbImage image) => RunBatch(new[] { image })[0];

    /// <summary>
    /// Runs the one-step edges on several images in ONE batched UNet pass; every image must have the same processed size
    /// (<see cref="ProcessedSizeOf"/>). Each image gets the same noise ε as when it runs alone, so the results equal
    /// <see cref="Run"/>'s up to float rounding of the batched convolutions.
    /// </summary>
    public IReadOnlyList<OneStepEdgeResult> RunBatch(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) return Array.Empty<OneStepEdgeResult>();
        var (pw, ph) = ProcessedSizeOf(images[0].Width, images[0].Height);
        for (int i = 1; i < images.Count; i++)
            if (ProcessedSizeOf(images[i].Width, images[i].Height) != (pw, ph))
                throw new ArgumentException($"image {i} of the batch is processed at {ProcessedSizeOf(images[i].Width, images[i].Height)}, image 0 at {(pw, ph)}: batch images of one processed size");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var inputs = images.Select(_prepare.Prepare).ToList();
        var x0 = torch.cat(inputs.Select(x => x.X0).ToList(), 0);
        var eps = torch.cat(inputs.Select(x => x.Eps).ToList(), 0);
        foreach (var x in inputs) x.Dispose();
        int tau = _adapter.Timestep;
        var xt = _model.Scheduler.AddNoise(x0, eps, tau);
        var t = torch.tensor(new long[] { tau }, device: _model.Device);
        var cond = _cond.expand(images.Count, -1, -1);
        Tensor logits;
        _adapter.Lora.Enabled = true;
        try
        {
            using var features = new DecoderFeatures(_adapter.Generator.Config.UpBlocks);
            _model.Unet.forward(xt, t, cond, decoder: features);
            logits = _adapter.Generator.forward(features.Features, ph, pw);
        }
        finally { _adapter.Lora.Enabled = false; }
        var probs = torch.sigmoid(logits).to(CPU).to_type(ScalarType.Float32);
        var results = new List<OneStepEdgeResult>(images.Count);
        for (int i = 0; i < images.Count; i++) results.Add(Finish(images[i], probs[i].unsqueeze(0), pw, ph));
        return results;
    }

    /// <summary>Resizes p [1, 1, h, w] to the image and builds its ternary map (moved out of the caller's dispose scope).</summary>
    OneStepEdgeResult Finish(RgbImage image, Tensor prob, int pw, int ph)
    {
        using var zero = 0.0.ToScalar();   // explicit Scalars (an implicit one may be finalised during the native call)
        using var one = 1.0.ToScalar();
        using var threshold = _adapter.EdgeThreshold.ToScalar();
        var edges = nn.functional.interpolate(prob, size: new long[] { image.Height, image.Width }, mode: InterpolationMode.Bilinear, align_corners: false)
            .reshape(image.Height, image.Width).clamp(zero, one);
        // the ternary map: the skeleton of p ≥ the threshold (the predicted bands are several pixels wide; refinement reads a band as a
        // region boundary, so thick bands swallow small objects), the rest interior
        var band = edges.ge(threshold).contiguous().data<bool>().ToArray();
        var skeleton = Edges.Thinning.ZhangSuen(band, image.Width, image.Height);
        var ternary = torch.tensor(skeleton.Select(v => v ? (sbyte)1 : (sbyte)0).ToArray(), new long[] { image.Height, image.Width });
        return new OneStepEdgeResult
        {
            Width = image.Width, Height = image.Height, ProcessedWidth = pw, ProcessedHeight = ph,
            ProbabilityProcessed = prob.reshape(ph, pw).contiguous().MoveToOuterDisposeScope(),
            Edges = edges.MoveToOuterDisposeScope(),
            Ternary = ternary.MoveToOuterDisposeScope(),
        };
    }

    /// <summary>Writes the same files as <c>diffegg edges</c> (<see cref="EdgeOutputs.Write"/>), with method <c>one-step</c> in the JSON.</summary>
    public void Write(OneStepEdgeResult r, string outDir, string stem, string? sourcePath = null)
    {
        EdgeOutputs.Write(outDir, stem, r.Ternary, r.Edges, _adapter.Timestep, null, w =>
        {
            w.WriteString("method", "one-step");
            if (sourcePath is not null) w.WriteString("image", sourcePath);
            w.WriteString("model", _model.Path);
            w.WriteString("adapter", _adapter.Path ?? "");
            w.WriteNumber("width", r.Width);
            w.WriteNumber("height", r.Height);
            w.WriteNumber("processed_width", r.ProcessedWidth);
            w.WriteNumber("processed_height", r.ProcessedHeight);
            w.WriteNumber("chosen_timestep", _adapter.Timestep);
            w.WriteNumber("fixed_timestep", _adapter.Timestep);
            w.WriteStartArray("timesteps"); w.WriteNumberValue(_adapter.Timestep); w.WriteEndArray();
            w.WriteNumber("edge_threshold", _adapter.EdgeThreshold);
            w.WriteNumber("seed", Options.Seed);
        });
    }

    public void Dispose()
    {
        _cond.Dispose();
        _prepare.Dispose();
    }
}
