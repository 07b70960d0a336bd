using System.Globalization;
using DiffEgg.Common;
using DiffEgg.FineTuning.Lora;
using DiffEgg.Models;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning;

/// <summary>Options of <see cref="FineTuneTrainer"/> (the <c>diffegg finetune</c> flags).</summary>
public sealed record FineTuneOptions
{
    /// <summary>The diffusion model folder to adapt (pixel-space or diffusers layout).</summary>
    public required string ModelDir { get; init; }
    /// <summary>Training images: a folder of images or a <c>diffegg synth</c> folder (its <c>images/</c>).</summary>
    public required string DataDir { get; init; }
    /// <summary>The <c>diffegg edges</c> output folder holding <c>stem.ternary.png</c> for every training image.</summary>
    public required string EdgesDir { get; init; }
    /// <summary>The adapter folder written at every checkpoint and at the end (<see cref="EdgeAdapter"/>); holds <c>training/</c>.</summary>
    public required string OutDir { get; init; }
    /// <summary>Checkpoint folder; default <c>{OutDir}.checkpoint</c>.</summary>
    public string? CheckpointDir { get; init; }
    public int Steps { get; init; } = 1000;
    public int Batch { get; init; } = 8;
    public int Accumulate { get; init; } = 1;
    public double LearningRate { get; init; } = 1e-3;
    public int WarmupSteps { get; init; } = 50;
    /// <summary><c>constant</c> (after warm-up) or <c>cosine</c> (decays to 0 at <see cref="Steps"/>).</summary>
    public string Schedule { get; init; } = "constant";
    public double WeightDecay { get; init; } = 0.01;
    public double ClipGradNorm { get; init; } = 1.0;
    /// <summary>Training resolution (images are centre-cropped to a square and resized to Size × Size); 0 = the model's native size.</summary>
    public int Size { get; init; }
    public long Seed { get; init; }
    public int Threads { get; init; } = 2;
    /// <summary>LoRA rank of every layer; null = min(64, min(in, out)/2) per layer.</summary>
    public int? Rank { get; init; }
    /// <summary>LoRA alpha; null = the rank (scale 1).</summary>
    public double? Alpha { get; init; }
    public double Dropout { get; init; }
    /// <summary><c>attn</c>, <c>attn,proj</c>, <c>attn,proj,ff</c>.</summary>
    public string Targets { get; init; } = "attn";
    /// <summary>Width of G_φ's FPN.</summary>
    public int FpnChannels { get; init; } = 32;
    /// <summary>τ of the UNet pass (Alg 3: 0).</summary>
    public int Timestep { get; init; }
    /// <summary>Written to the adapter: one-step edges mark the skeleton of p ≥ this as edge (does not change training).</summary>
    public double EdgeThreshold { get; init; } = EdgeAdapter.DefaultEdgeThreshold;
    /// <summary>Weight of the reconstruction term ‖I − Î‖².</summary>
    public double RecWeight { get; init; } = 1.0;
    /// <summary>Weight of the masked Dice term.</summary>
    public double DiceWeight { get; init; } = 1.0;
    /// <summary>
    /// Space of the reconstruction term of a latent (VAE) model: <c>image</c> (decode x̂₀ and compare with the image, as in the paper) or
    /// <c>latent</c> (compare x̂₀ with the image's latent). Pixel-space models compare pixels either way.
    /// </summary>
    public string RecSpace { get; init; } = "image";
    public int CheckpointEvery { get; init; } = 100;
    public bool Fp16 { get; init; } = true;
    public bool Resume { get; init; }
    public double? MaxMinutes { get; init; }

    public string CheckpointPath => CheckpointDir ?? Path.GetFullPath(OutDir).TrimEnd(Path.DirectorySeparatorChar) + ".checkpoint";

    /// <summary>Throws <see cref="InvalidOptionException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (Steps < 1) throw new InvalidOptionException(nameof(Steps), $"must be ≥ 1, got {Steps}");
        if (Batch < 1) throw new InvalidOptionException(nameof(Batch), $"must be ≥ 1, got {Batch}");
        if (Accumulate < 1) throw new InvalidOptionException(nameof(Accumulate), $"must be ≥ 1, got {Accumulate}");
        if (!(LearningRate > 0)) throw new InvalidOptionException(nameof(LearningRate), $"must be > 0, got {LearningRate}");
        if (WarmupSteps < 0) throw new InvalidOptionException(nameof(WarmupSteps), $"must be ≥ 0, got {WarmupSteps}");
        if (Schedule is not ("constant" or "cosine")) throw new InvalidOptionException(nameof(Schedule), $"must be constant or cosine, got '{Schedule}'");
        if (!(WeightDecay >= 0)) throw new InvalidOptionException(nameof(WeightDecay), $"must be ≥ 0, got {WeightDecay}");
        if (!(ClipGradNorm >= 0)) throw new InvalidOptionException(nameof(ClipGradNorm), $"must be ≥ 0, got {ClipGradNorm}");
        if (Size != 0 && Size < 8) throw new InvalidOptionException(nameof(Size), $"must be ≥ 8 (or 0 = the model's native size), got {Size}");
        if (Threads < 1) throw new InvalidOptionException(nameof(Threads), $"must be ≥ 1, got {Threads}");
        if (Rank is < 1) throw new InvalidOptionException(nameof(Rank), $"must be ≥ 1, got {Rank}");
        if (Alpha is double a && !(a > 0)) throw new InvalidOptionException(nameof(Alpha), $"must be > 0, got {a}");
        if (Dropout is < 0 or >= 1 || double.IsNaN(Dropout)) throw new InvalidOptionException(nameof(Dropout), $"must lie in [0, 1), got {Dropout}");
        _ = LoraOptions.ParseTargets(Targets);
        if (FpnChannels < 1) throw new InvalidOptionException(nameof(FpnChannels), $"must be ≥ 1, got {FpnChannels}");
        if (Timestep < 0) throw new InvalidOptionException(nameof(Timestep), $"must be ≥ 0, got {Timestep}");
        if (!(EdgeThreshold > 0 && EdgeThreshold < 1)) throw new InvalidOptionException(nameof(EdgeThreshold), $"must lie in (0, 1), got {EdgeThreshold}");
        if (!(RecWeight >= 0) || !(DiceWeight >= 0) || RecWeight + DiceWeight == 0)
            throw new InvalidOptionException(nameof(RecWeight), $"{RecWeight} and DiceWeight {DiceWeight} must be ≥ 0 and not both 0");
        if (RecSpace is not ("image" or "latent")) throw new InvalidOptionException(nameof(RecSpace), $"must be image or latent, got '{RecSpace}'");
        if (CheckpointEvery < 1) throw new InvalidOptionException(nameof(CheckpointEvery), $"must be ≥ 1, got {CheckpointEvery}");
        if (MaxMinutes is <= 0) throw new InvalidOptionException(nameof(MaxMinutes), $"must be > 0, got {MaxMinutes}");
    }

    /// <summary>The options that define the optimisation trajectory (must be equal on resume), as name → value.</summary>
    public IReadOnlyDictionary<string, string> TrajectoryKey()
    {
        var k = new Dictionary<string, string>
        {
            ["model"] = Path.GetFullPath(ModelDir), ["data"] = Path.GetFullPath(DataDir), ["edges"] = Path.GetFullPath(EdgesDir),
            ["batch"] = I(Batch), ["accumulate"] = I(Accumulate), ["lr"] = D(LearningRate), ["warmup"] = I(WarmupSteps), ["schedule"] = Schedule,
            ["weight_decay"] = D(WeightDecay), ["clip"] = D(ClipGradNorm), ["size"] = I(Size), ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
            ["rank"] = Rank is int r ? I(r) : "auto", ["alpha"] = Alpha is double a ? D(a) : "rank", ["dropout"] = D(Dropout),
            ["targets"] = LoraOptions.TargetsName(LoraOptions.ParseTargets(Targets)), ["fpn_channels"] = I(FpnChannels), ["timestep"] = I(Timestep),
            ["rec_weight"] = D(RecWeight), ["dice_weight"] = D(DiceWeight), ["rec_space"] = RecSpace,
        };
        if (Schedule == "cosine") k["steps"] = I(Steps);   // the cosine schedule depends on the total
        return k;
    }

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
    static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>Outcome of <see cref="FineTuneTrainer.Run"/>.</summary>
public sealed record FineTuneResult(long StepsDone, long TotalSteps, double FinalLoss, double MeanLossLast100, double Seconds,
    bool StoppedByTimeLimit, bool Cancelled, long LoraParameters, long GeneratorParameters, TernaryFractions Fractions, TrainingLog Log);

/// <summary>
/// DiffEGG's self-supervised fine-tuning (Alg 3): LoRA on the UNet's attention projections plus the edge generator G_φ, trained on the
/// model's own pseudo-edges. Per sample: x_τ = √ᾱ_τ·x₀ + √(1−ᾱ_τ)·ε (τ = 0), one UNet pass under null conditioning whose up-block outputs
/// feed G_φ, Î = (x_τ − √(1−ᾱ_τ)·ε̂)/√ᾱ_τ (Eq 3-4; decoded by the VAE for latent models unless <c>--rec-space latent</c>), and
/// L = w_rec·‖I − Î‖² + w_dice·MaskedDice(σ(G_φ), ternary) (Eq 7-8, uncertain pixels weigh 0). AdamW on LoRA + G_φ only (the base model is
/// frozen). Checkpoints, resume, log and plot are <see cref="TrainingJob"/>'s; bit-exact resume on one thread.
/// </summary>
public static class FineTuneTrainer
{
    /// <summary>Runs (or resumes) fine-tuning. <paramref name="info"/> receives lines worth keeping on screen (data set, pseudo-edge fractions, parameters).</summary>
    public static FineTuneResult Run(FineTuneOptions o, Action<TrainProgress>? progress = null, Action<string>? status = null,
        Action<string>? info = null, CancellationToken cancel = default)
    {
        o.Validate();
        TorchRuntime.EnsureLoaded();
        torch.set_num_threads(o.Threads);
        status?.Invoke($"loading {o.ModelDir}");
        using var model = DiffusionModelFolder.Load(o.ModelDir);
        if (model.Scheduler.PredictionType != "epsilon")
            throw new DiffEggException($"{o.ModelDir}: scheduler prediction_type '{model.Scheduler.PredictionType}' is not supported by finetune (epsilon only: Eq 3-4)");
        if (o.Timestep >= model.Scheduler.NumTrainTimesteps)
            throw new InvalidOptionException(nameof(o.Timestep), $"{o.Timestep} is outside [0, {model.Scheduler.NumTrainTimesteps})");
        var unet = model.Unet;
        var vae = model.Vae;
        int vaeFactor = vae?.DownFactor ?? 1;
        int size = o.Size > 0 ? o.Size : unet.Config.SampleSize * vaeFactor;
        int multiple = vaeFactor * unet.DownFactor;
        if (size % multiple != 0)
            throw new InvalidOptionException(nameof(o.Size), $"{size} must be a multiple of {multiple} for {o.ModelDir} (VAE factor × UNet factor)");

        status?.Invoke($"reading images from {o.DataDir} and pseudo-edges from {o.EdgesDir}");
        using var data = FineTuneData.Load(o.DataDir, o.EdgesDir, size);
        info?.Invoke($"training set: {data.Count} image(s) at {size}×{size}; pseudo-edges ({o.EdgesDir}): {data.Fractions}");

        foreach (var p in unet.parameters()) p.requires_grad = false;
        if (vae is not null) foreach (var p in vae.parameters()) p.requires_grad = false;
        unet.eval();
        vae?.eval();
        using var cond = model.EncodeEmptyPrompt().detach();
        var loraOptions = new LoraOptions { Rank = o.Rank, Alpha = o.Alpha, Dropout = o.Dropout, Targets = LoraOptions.ParseTargets(o.Targets) };
        var adapter = EdgeAdapter.Create(unet, loraOptions, o.FpnChannels, o.Timestep, o.Seed, size, o.EdgeThreshold);   // an explicit rank too large for a layer: InvalidOptionException (Rank)
        using var adapterOwner = adapter;
        adapter.Lora.Train(true);
        adapter.Generator.train();
        long genParams = adapter.Generator.parameters().Sum(p => p.numel());
        info?.Invoke(string.Create(CultureInfo.InvariantCulture, $"{adapter.Lora.Describe()}; edge generator G_φ (FPN over up_blocks {string.Join(",", adapter.Generator.Config.UpBlocks)}, {o.FpnChannels} channels) {genParams:N0} parameters"));

        bool latentRec = vae is not null && o.RecSpace == "latent";
        Tensor? latents = null, latentsFlipped = null;
        if (vae is not null)
        {
            status?.Invoke($"encoding {data.Count} image(s) with the VAE");
            latents = EncodeAll(vae, data, false);
            latentsFlipped = EncodeAll(vae, data, true);
        }
        using var latentsOwner = latents;
        using var latentsFlippedOwner = latentsFlipped;
        double alphaBar;
        using (var ab = model.Scheduler.AlphasCumprod[o.Timestep]) alphaBar = ab.to_type(ScalarType.Float64).item<double>();

        var parameters = adapter.Parameters().ToList();
        using var opt = torch.optim.AdamW(parameters, lr: o.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: o.WeightDecay);
        long lastStep = 0;

        TrainStepResult Step(long step)
        {
            double lr = o.Schedule == "cosine"
                ? LearningRateSchedule.Cosine(o.LearningRate, o.WarmupSteps, step, o.Steps)
                : LearningRateSchedule.Constant(o.LearningRate, o.WarmupSteps, step);
            foreach (var g in opt.ParamGroups) g.LearningRate = lr;
            double lossSum = 0, diceSum = 0, recSum = 0;
            using (var scope = torch.NewDisposeScope())
            {
                opt.zero_grad();
                for (int micro = 0; micro < o.Accumulate; micro++)
                {
                    using var inner = torch.NewDisposeScope();
                    ulong seed = TrainingJob.StepSeed(o.Seed, step, micro);
                    using var gen = new torch.Generator(seed);
                    torch.manual_seed(unchecked((long)seed));   // LoRA dropout draws from the global generator
                    var (idx, flip) = data.Draw(o.Batch, gen);
                    var image = data.Images(idx, flip);
                    var target = data.Targets(idx, flip);
                    var x0 = vae is null ? image : SelectLatents(latents!, latentsFlipped!, idx, flip);
                    var noise = torch.randn(x0.shape, generator: gen);
                    var xt = model.Scheduler.AddNoise(x0, noise, o.Timestep);
                    var t = torch.tensor(new long[] { o.Timestep });
                    using var features = new DecoderFeatures(adapter.Generator.Config.UpBlocks);
                    Tensor loss, dice, rec;
                    using (TorchRuntime.ForwardConvolutions())   // forward with oneDNN, backward without (TrainingJob)
                    {
                        var epsHat = unet.forward(xt, t, cond.expand(o.Batch, -1, -1), decoder: features);
                        var x0Hat = ReconstructionTarget.PredictX0(xt, epsHat, alphaBar);
                        rec = vae is null ? nn.functional.mse_loss(x0Hat, image)
                            : latentRec ? nn.functional.mse_loss(x0Hat, x0)
                            : nn.functional.mse_loss(vae.Decode(x0Hat / vae.ScalingFactor), image);
                        var logits = adapter.Generator.forward(features.Features, size, size);
                        dice = MaskedDice.Loss(torch.sigmoid(logits), target);
                        loss = rec * o.RecWeight + dice * o.DiceWeight;
                    }
                    double lv = loss.item<float>(), dv = dice.item<float>(), rv = rec.item<float>();
                    if (!double.IsFinite(lv)) throw new DiffEggException($"fine-tuning diverged: loss is {lv} at step {step} (lower LearningRate?)");
                    (loss / o.Accumulate).backward();
                    lossSum += lv; diceSum += dv; recSum += rv;
                }
                if (o.ClipGradNorm > 0) nn.utils.clip_grad_norm_(parameters, o.ClipGradNorm);
                opt.step();
            }
            lastStep = step;
            return new TrainStepResult(lossSum / o.Accumulate, lr, new[] { diceSum / o.Accumulate, recSum / o.Accumulate });
        }

        // the training options in the adapter's config.json; folders by name only (the adapter may be shipped: no machine paths)
        var trainingInfo = new Dictionary<string, string>(o.TrajectoryKey()) { ["steps"] = o.Steps.ToString(CultureInfo.InvariantCulture) };
        foreach (var k in new[] { "model", "data", "edges" }) trainingInfo[k] = Path.GetFileName(trainingInfo[k].TrimEnd(Path.DirectorySeparatorChar));
        var job = new TrainingJob
        {
            TotalSteps = o.Steps,
            CheckpointEvery = o.CheckpointEvery,
            MaxMinutes = o.MaxMinutes,
            CheckpointDir = o.CheckpointPath,
            TrainingDir = Path.Combine(o.OutDir, "training"),
            ExtraColumns = new[] { "dice", "rec" },
            PlotTitle = string.Create(CultureInfo.InvariantCulture,
                $"finetune {Path.GetFileName(Path.GetFullPath(o.ModelDir).TrimEnd(Path.DirectorySeparatorChar))}: batch {o.Batch}×{o.Accumulate}, {size}×{size}, lr {o.LearningRate} {o.Schedule}, rank {(o.Rank?.ToString(CultureInfo.InvariantCulture) ?? "auto")}, seed {o.Seed}"),
            TrajectoryKey = o.TrajectoryKey(),
            AllowedChanges = o.Schedule == "cosine" ? "--max-minutes, --threads, --checkpoint-every" : "--steps, --max-minutes, --threads, --checkpoint-every",
            Step = Step,
            WriteCheckpoint = dir =>
            {
                SafeTensorsWriter.Save(Path.Combine(dir, "adapter.safetensors"), adapter.NamedTensors(), SafeTensorsDType.F32);
                opt.save_state_dict(Path.Combine(dir, "optimizer.bin"));
            },
            ReadCheckpoint = dir =>
            {
                adapter.LoadTensors(Path.Combine(dir, "adapter.safetensors"));
                string optPath = Path.Combine(dir, "optimizer.bin");
                if (!File.Exists(optPath)) throw new DiffEggException($"{optPath}: checkpoint optimizer state not found");
                opt.load_state_dict(optPath);
            },
            WriteOutputs = () =>
            {
                trainingInfo["steps_done"] = lastStep.ToString(CultureInfo.InvariantCulture);
                adapter.Save(o.OutDir, o.Fp16 ? SafeTensorsDType.F16 : SafeTensorsDType.F32, trainingInfo);
            },
            RefuseToOverwriteCheckpoint = true,
            Detail = r => string.Create(CultureInfo.InvariantCulture, $"dice {r.Extra![0]:F4} rec {r.Extra[1]:G3}"),
        };
        var r = job.Run(o.Resume, progress, status, cancel);
        return new FineTuneResult(r.StepsDone, r.TotalSteps, r.FinalLoss, r.MeanLossLast100, r.Seconds, r.StoppedByTimeLimit, r.Cancelled,
            adapter.Lora.ParameterCount, genParams, data.Fractions, r.Log);
    }

    /// <summary>VAE latents (posterior mean × scaling factor) of every training image, unflipped or flipped, [N, C, h, w].</summary>
    static Tensor EncodeAll(Models.Vae.AutoencoderKL vae, FineTuneData data, bool flipped)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var all = data.AllImages(flipped);
        var parts = new List<Tensor>();
        for (long i = 0; i < data.Count; i += 8)
        {
            using var post = vae.Encode(all.narrow(0, i, Math.Min(8, data.Count - i)));
            parts.Add(post.Mean * vae.ScalingFactor);
        }
        return torch.cat(parts, 0).MoveToOuterDisposeScope();
    }

    static Tensor SelectLatents(Tensor plain, Tensor flipped, long[] idx, bool[] flip)
    {
        using var scope = torch.NewDisposeScope();
        var i = torch.tensor(idx);
        var a = plain.index_select(0, i);
        var b = flipped.index_select(0, i);
        var f = torch.tensor(flip).reshape(flip.Length, 1, 1, 1);
        return torch.where(f, b, a).MoveToOuterDisposeScope();
    }
}
