using System.Globalization;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Models;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.Schedulers;
using DiffEgg.Models.UNet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffEgg.Training;

/// <summary>Options of <see cref="BaseModelTrainer"/> (the <c>diffegg train-base</c> flags).</summary>
public sealed record TrainBaseOptions
{
    /// <summary>Folder of training images (a synth output folder: its <c>images/</c> is used).</summary>
    public required string DataDir { get; init; }
    /// <summary>Model folder written (pixel-space layout) at every checkpoint and at the end; holds <c>training/</c> (CSV, plot).</summary>
    public required string OutDir { get; init; }
    /// <summary>Checkpoint folder; default <c>{OutDir}.checkpoint</c> beside the model folder.</summary>
    public string? CheckpointDir { get; init; }
    public string Config { get; init; } = "small";
    public int Steps { get; init; } = 1000;
    public int Batch { get; init; } = 16;
    public int Accumulate { get; init; } = 1;
    public double LearningRate { get; init; } = 3e-4;
    public int WarmupSteps { get; init; } = 100;
    public double WeightDecay { get; init; } = 0.01;
    public double ClipGradNorm { get; init; } = 1.0;
    /// <summary>Images are resized to Size × Size.</summary>
    public int Size { get; init; } = 64;
    /// <summary>Random square crops of this size (0 = the whole image).</summary>
    public int Crop { get; init; }
    /// <summary>Crop curriculum: steps after this one train on whole Size × Size images (0 = crops throughout).</summary>
    public int FullFrom { get; init; }
    /// <summary>Micro-batch size of the whole-image phase after <see cref="FullFrom"/> (0 = same as <see cref="Batch"/>).</summary>
    public int FullBatch { get; init; }
    public long Seed { get; init; }
    public int Threads { get; init; } = 2;
    public double LowTBias { get; init; }
    public int LowTMax { get; init; } = 100;
    public double Ema { get; init; } = 0.999;
    public int NullTokens { get; init; } = 4;
    public int CheckpointEvery { get; init; } = 100;
    public bool Fp16 { get; init; } = true;
    public bool Resume { get; init; }
    /// <summary>Stop (with a checkpoint and a saved model) once this much wall time has passed in this invocation.</summary>
    public double? MaxMinutes { get; init; }

    public string CheckpointPath => CheckpointDir ?? Path.GetFullPath(OutDir).TrimEnd(Path.DirectorySeparatorChar) + ".checkpoint";
    public int CropSize => Crop == 0 ? Size : Crop;
    /// <summary>(micro-batch size, crop side) of optimizer step <paramref name="step"/> (1-based), following the crop curriculum.</summary>
    public (int Batch, int Crop) PhaseAt(long step) =>
        FullFrom > 0 && step > FullFrom ? (FullBatch > 0 ? FullBatch : Batch, Size) : (Batch, CropSize);

    /// <summary>Throws <see cref="InvalidOptionException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (Steps < 1) throw new InvalidOptionException(nameof(Steps), $"must be ≥ 1, got {Steps}");
        if (Batch < 1) throw new InvalidOptionException(nameof(Batch), $"must be ≥ 1, got {Batch}");
        if (Accumulate < 1) throw new InvalidOptionException(nameof(Accumulate), $"must be ≥ 1, got {Accumulate}");
        if (!(LearningRate > 0)) throw new InvalidOptionException(nameof(LearningRate), $"must be > 0, got {LearningRate}");
        if (WarmupSteps < 0) throw new InvalidOptionException(nameof(WarmupSteps), $"must be ≥ 0, got {WarmupSteps}");
        if (Size < 8) throw new InvalidOptionException(nameof(Size), $"must be ≥ 8, got {Size}");
        if (Crop < 0 || Crop > Size) throw new InvalidOptionException(nameof(Crop), $"must lie in [0, Size {Size}], got {Crop}");
        if (FullFrom < 0) throw new InvalidOptionException(nameof(FullFrom), $"must be ≥ 0, got {FullFrom}");
        if (FullBatch < 0) throw new InvalidOptionException(nameof(FullBatch), $"must be ≥ 0, got {FullBatch}");
        if (FullFrom > 0 && Crop == 0) throw new InvalidOptionException(nameof(FullFrom), "needs Crop > 0: without crops every step already uses whole images");
        if (Threads < 1) throw new InvalidOptionException(nameof(Threads), $"must be ≥ 1, got {Threads}");
        if (NullTokens < 1) throw new InvalidOptionException(nameof(NullTokens), $"must be ≥ 1, got {NullTokens}");
        if (CheckpointEvery < 1) throw new InvalidOptionException(nameof(CheckpointEvery), $"must be ≥ 1, got {CheckpointEvery}");
        if (MaxMinutes is <= 0) throw new InvalidOptionException(nameof(MaxMinutes), $"must be > 0, got {MaxMinutes}");
        if (LowTBias is < 0 or > 1 || double.IsNaN(LowTBias)) throw new InvalidOptionException(nameof(LowTBias), $"must lie in [0, 1], got {LowTBias}");
        if (LowTMax < 1 || LowTMax > 1000) throw new InvalidOptionException(nameof(LowTMax), $"must lie in [1, 1000], got {LowTMax}");
        if (Ema is < 0 or >= 1) throw new InvalidOptionException(nameof(Ema), $"must lie in [0, 1), got {Ema}");
    }

    /// <summary>The options that must not change across a resume (they define the optimisation trajectory), as "name=value" strings.</summary>
    public IReadOnlyDictionary<string, string> TrajectoryKey() => new Dictionary<string, string>
    {
        ["config"] = Config, ["batch"] = I(Batch), ["accumulate"] = I(Accumulate), ["lr"] = D(LearningRate), ["warmup"] = I(WarmupSteps),
        ["weight_decay"] = D(WeightDecay), ["clip"] = D(ClipGradNorm), ["size"] = I(Size), ["crop"] = I(CropSize), ["full_from"] = I(FullFrom), ["full_batch"] = I(FullBatch), ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
        ["low_t_bias"] = D(LowTBias), ["low_t_max"] = I(LowTMax), ["ema"] = D(Ema), ["null_tokens"] = I(NullTokens),
    };

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
    static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>Outcome of <see cref="BaseModelTrainer.Run"/>.</summary>
public sealed record TrainResult(long StepsDone, long TotalSteps, double FinalLoss, double MeanLossLast100, double Seconds, bool StoppedByTimeLimit, long Parameters);

/// <summary>
/// Trains a pixel-space base diffusion model from scratch: DDPM ε-prediction on the scaled_linear schedule (1000 steps; DDPM Eq. 14 loss
/// ‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t, c∅)‖²), conditioned on a learned null embedding c∅, AdamW with linear warm-up, gradient clipping, EMA of
/// the weights (the EMA weights are saved), atomic checkpoints and exact resume. Deterministic for a seed and thread count.
/// </summary>
public static class BaseModelTrainer
{
    /// <summary>The per-(step, micro-batch) generator seed (<see cref="TrainingJob.StepSeed"/>).</summary>
    public static ulong StepSeed(long seed, long step, int micro) => TrainingJob.StepSeed(seed, step, micro);

    /// <summary>Linear warm-up: lr·min(1, step / warmup) for 1-based <paramref name="step"/> (<see cref="LearningRateSchedule.Constant"/>).</summary>
    public static double LearningRateAt(double lr, int warmup, long step) => LearningRateSchedule.Constant(lr, warmup, step);

    /// <summary>Builds a freshly initialised network for <paramref name="config"/> (seeded) and checks that every parameter is finite.</summary>
    public static UNet2DConditionModel CreateModel(UNet2DConditionConfig config, long seed)
    {
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(seed);
        var m = new UNet2DConditionModel(config);
        using var scope = torch.NewDisposeScope();
        foreach (var (name, p) in m.named_parameters())
            if (!p.isfinite().all().item<bool>())
            {
                m.Dispose();
                throw new DiffEggException($"freshly built UNet: parameter '{name}' is not finite (uninitialised memory?)");
            }
        return m;
    }

    /// <summary>Runs (or resumes) training as configured by <paramref name="o"/>.</summary>
    public static TrainResult Run(TrainBaseOptions o, Action<TrainProgress>? progress = null, Action<string>? status = null, CancellationToken cancel = default)
    {
        o.Validate();
        TorchRuntime.EnsureLoaded();
        torch.set_num_threads(o.Threads);
        var cfg = BaseModelConfigs.Resolve(o.Config);
        string trainingDir = Path.Combine(o.OutDir, "training");

        status?.Invoke($"reading images from {o.DataDir}");
        using var data = TrainingImages.Load(o.DataDir, o.Size);
        using var sched = DDPMScheduler.StableDiffusion15();
        var sampler = new TimestepSampler(sched.NumTrainTimesteps, o.LowTBias, o.LowTMax);

        using var unet = CreateModel(cfg, o.Seed);
        unet.train();
        Parameter nullEmb;
        using (var g0 = new torch.Generator(StepSeed(o.Seed, 0, -1)))
        using (var _ = torch.no_grad())
        using (var init = torch.randn(new long[] { 1, o.NullTokens, cfg.CrossAttentionDim }, generator: g0))
            nullEmb = new Parameter(init.clone());
        using var nullEmbOwner = nullEmb;
        var named = unet.named_parameters().Select(np => (np.name, (Tensor)np.parameter)).Append((PixelModelFolder.NullEmbeddingKey, (Tensor)nullEmb)).ToList();
        var parameters = unet.parameters().Append(nullEmb).ToList();
        long paramCount = unet.parameters().Sum(p => p.numel());
        using var opt = torch.optim.AdamW(parameters, lr: o.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: o.WeightDecay);
        using var ema = new ExponentialMovingAverage(named, o.Ema);

        TrainStepResult Step(long step)
        {
            double lr = LearningRateAt(o.LearningRate, o.WarmupSteps, step);
            foreach (var g in opt.ParamGroups) g.LearningRate = lr;
            double lossSum = 0;
            var (batch, crop) = o.PhaseAt(step);
            if (o.FullFrom > 0 && step == o.FullFrom + 1) status?.Invoke($"step {step}: crop curriculum switches to whole {o.Size}×{o.Size} images, batch {batch}");
            using (var scope = torch.NewDisposeScope())
            {
                opt.zero_grad();
                for (int micro = 0; micro < o.Accumulate; micro++)
                {
                    using var inner = torch.NewDisposeScope();
                    using var gen = new torch.Generator(StepSeed(o.Seed, step, micro));
                    var x0 = data.Batch(batch, crop, gen);
                    var noise = torch.randn(x0.shape, generator: gen);
                    var t = sampler.Sample(batch, gen);
                    var xt = sched.AddNoise(x0, noise, t);
                    var cond = nullEmb.expand(batch, -1, -1);
                    Tensor loss;
                    using (TorchRuntime.ForwardConvolutions())   // forward with oneDNN, backward without (TrainingJob)
                        loss = nn.functional.mse_loss(unet.forward(xt, t, cond), noise);
                    double lv = loss.item<float>();
                    if (!double.IsFinite(lv)) throw new DiffEggException($"training diverged: loss is {lv} at step {step} (lower LearningRate?)");
                    (loss / o.Accumulate).backward();
                    lossSum += lv;
                }
                if (o.ClipGradNorm > 0) nn.utils.clip_grad_norm_(parameters, o.ClipGradNorm);
                opt.step();
            }
            ema.Update(step);
            return new TrainStepResult(lossSum / o.Accumulate, lr);
        }

        var job = new TrainingJob
        {
            TotalSteps = o.Steps,
            CheckpointEvery = o.CheckpointEvery,
            MaxMinutes = o.MaxMinutes,
            CheckpointDir = o.CheckpointPath,
            TrainingDir = trainingDir,
            PlotTitle = $"train-base {o.Config}: batch {o.Batch}×{o.Accumulate}, {o.CropSize}×{o.CropSize}{(o.FullFrom > 0 ? $" then {o.Size}×{o.Size} after step {o.FullFrom}" : "")}, lr {o.LearningRate.ToString(CultureInfo.InvariantCulture)}, seed {o.Seed}",
            TrajectoryKey = o.TrajectoryKey(),
            Step = Step,
            WriteCheckpoint = dir => SaveCheckpointFiles(dir, unet, nullEmb, opt, ema),
            ReadCheckpoint = dir => LoadCheckpointFiles(dir, unet, nullEmb, opt, ema),
            WriteOutputs = () => SaveModel(o, unet, ema, sched),
            ExtraState = new Dictionary<string, object> { ["unet_config"] = JsonDocument.Parse(PixelModelFolder.UNetConfigJson(cfg)).RootElement },
        };
        var r = job.Run(o.Resume, progress, status, cancel);
        return new TrainResult(r.StepsDone, r.TotalSteps, r.FinalLoss, r.MeanLossLast100, r.Seconds, r.StoppedByTimeLimit, paramCount);
    }

    /// <summary>Writes the EMA weights as a pixel-space model folder (<see cref="PixelModelFolder"/>).</summary>
    static void SaveModel(TrainBaseOptions o, UNet2DConditionModel unet, ExponentialMovingAverage ema, DDPMScheduler sched)
    {
        var weights = ema.Named.Where(kv => kv.Key != PixelModelFolder.NullEmbeddingKey).ToList();
        PixelModelFolder.Save(o.OutDir, unet, ema[PixelModelFolder.NullEmbeddingKey], sched, o.Fp16, weights);
    }

    static void SaveCheckpointFiles(string dir, UNet2DConditionModel unet, Parameter nullEmb, OptimizerHelper opt, ExponentialMovingAverage ema)
    {
        var model = PixelModelFolder.StateOf(unet);
        model.Add(KeyValuePair.Create(PixelModelFolder.NullEmbeddingKey, (Tensor)nullEmb));
        SafeTensorsWriter.Save(Path.Combine(dir, "model.safetensors"), model, SafeTensorsDType.F32);
        SafeTensorsWriter.Save(Path.Combine(dir, "ema.safetensors"), ema.Named, SafeTensorsDType.F32);
        opt.save_state_dict(Path.Combine(dir, "optimizer.bin"));
    }

    static void LoadCheckpointFiles(string dir, UNet2DConditionModel unet, Parameter nullEmb, OptimizerHelper opt, ExponentialMovingAverage ema)
    {
        string modelPath = Path.Combine(dir, "model.safetensors");
        if (!File.Exists(modelPath)) throw new DiffEggException($"{modelPath}: checkpoint weights not found");
        using (var f = SafeTensorsFile.Open(modelPath))
        using (var _ = torch.no_grad())
        {
            if (!f.Contains(PixelModelFolder.NullEmbeddingKey)) throw new DiffEggException($"{modelPath}: key '{PixelModelFolder.NullEmbeddingKey}' not found");
            using (var t = f.Read(PixelModelFolder.NullEmbeddingKey, ScalarType.Float32))
            {
                if (!t.shape.SequenceEqual(nullEmb.shape)) throw new DiffEggException($"{modelPath}: key '{PixelModelFolder.NullEmbeddingKey}' has shape [{string.Join(",", t.shape)}], expected [{string.Join(",", nullEmb.shape)}]");
                nullEmb.copy_(t);
            }
        }
        StateDictLoaderWithExtra(unet, modelPath);
        string emaPath = Path.Combine(dir, "ema.safetensors");
        if (!File.Exists(emaPath)) throw new DiffEggException($"{emaPath}: checkpoint EMA weights not found");
        using (var f = SafeTensorsFile.Open(emaPath))
        {
            var dict = new Dictionary<string, Tensor>();
            try
            {
                foreach (var k in f.Keys) dict[k] = f.Read(k, ScalarType.Float32);
                ema.Load(dict, emaPath);
            }
            finally { foreach (var t in dict.Values) t.Dispose(); }
        }
        string optPath = Path.Combine(dir, "optimizer.bin");
        if (!File.Exists(optPath)) throw new DiffEggException($"{optPath}: checkpoint optimizer state not found");
        opt.load_state_dict(optPath);
    }

    // The checkpoint's model file also holds the null embedding: load the UNet keys only.
    static void StateDictLoaderWithExtra(UNet2DConditionModel unet, string path)
    {
        using var f = SafeTensorsFile.Open(path);
        var targets = PixelModelFolder.StateOf(unet).ToDictionary(kv => kv.Key, kv => kv.Value);
        var missing = targets.Keys.Where(k => !f.Contains(k)).ToList();
        if (missing.Count > 0) throw new DiffEggException($"{path}: {missing.Count} missing key(s): {string.Join(", ", missing.Take(10))}");
        using var _ = torch.no_grad();
        foreach (var (k, target) in targets)
        {
            var info = f.Info(k);
            if (!info.Shape.SequenceEqual(target.shape)) throw new DiffEggException($"{path}: key '{k}' has shape [{string.Join(",", info.Shape)}], model [{string.Join(",", target.shape)}]");
            using var t = f.Read(k, target.dtype);
            target.copy_(t);
        }
    }
}
