using System.ComponentModel;
using System.Globalization;
using DiffEgg.Common;
using DiffEgg.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>`diffegg train-base`: trains a pixel-space base diffusion model from scratch on a folder of images (see docs/training.md).</summary>
public sealed class TrainBaseCommand : Command<TrainBaseCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--data <DIR>", isRequired: true)] [InputOutput] [Description("Training images: a folder of images or a synth output folder (its images/).")] public string? Data { get; init; }
        [CommandOption("--out <MODELDIR>", isRequired: true)] [InputOutput] [Description("Model folder to write (pixel-space layout; training/ gets loss.csv and loss.png).")] public string? Out { get; init; }
        [CommandOption("--config <NAME>")] [DefaultValue("small")] [Description("small, medium, tiny or a path to a UNet config.json (in/out channels 3).")] public string Config { get; init; } = "small";
        [CommandOption("--steps <N>")] [DefaultValue(1000)] [Description("Optimizer steps in total (a resumed run continues up to N).")] public int Steps { get; init; } = 1000;
        [CommandOption("--batch <N>")] [DefaultValue(16)] [Description("Images per micro-batch.")] public int Batch { get; init; } = 16;
        [CommandOption("--accumulate <N>")] [DefaultValue(1)] [Description("Micro-batches per optimizer step (gradient accumulation).")] public int Accumulate { get; init; } = 1;
        [CommandOption("--lr <LR>")] [DefaultValue(3e-4)] [Description("AdamW peak learning rate.")] public double Lr { get; init; } = 3e-4;
        [CommandOption("--warmup <N>")] [DefaultValue(100)] [Description("Linear learning-rate warm-up steps.")] public int Warmup { get; init; } = 100;
        [CommandOption("--weight-decay <W>")] [DefaultValue(0.01)] [Description("AdamW weight decay.")] public double WeightDecay { get; init; } = 0.01;
        [CommandOption("--clip <N>")] [DefaultValue(1.0)] [Description("Gradient norm clip (0 = off).")] public double Clip { get; init; } = 1.0;
        [CommandOption("--size <PX>")] [DefaultValue(64)] [Description("Images are resized to PX×PX.")] public int Size { get; init; } = 64;
        [CommandOption("--crop <PX>")] [DefaultValue(0)] [Description("Random PX×PX crops (0 = whole image).")] public int Crop { get; init; }
        [CommandOption("--full-from <STEP>")] [DefaultValue(0)] [Description("Crop curriculum: after this step train on whole images (0 = crops throughout).")] public int FullFrom { get; init; }
        [CommandOption("--full-batch <N>")] [DefaultValue(0)] [Description("Micro-batch size of the whole-image phase (0 = --batch).")] public int FullBatch { get; init; }
        [CommandOption("--seed <S>")] [DefaultValue(0L)] [Description("Seed of initialisation and of every random draw.")] public long Seed { get; init; }
        [CommandOption("--threads <N>")] [DefaultValue(2)] [Description("torch CPU threads.")] public int Threads { get; init; } = 2;
        [CommandOption("--low-t-bias <B>")] [DefaultValue(0.0)] [Description("Probability of drawing t from U{0..low-t-max−1} instead of U{0..999}.")] public double LowTBias { get; init; }
        [CommandOption("--low-t-max <L>")] [DefaultValue(100)] [Description("Upper end (exclusive) of the low-timestep range.")] public int LowTMax { get; init; } = 100;
        [CommandOption("--ema <D>")] [DefaultValue(0.999)] [Description("EMA decay of the saved weights.")] public double Ema { get; init; } = 0.999;
        [CommandOption("--null-tokens <L>")] [DefaultValue(4)] [Description("Length of the learned null embedding.")] public int NullTokens { get; init; } = 4;
        [CommandOption("--checkpoint-every <N>")] [DefaultValue(100)] [Description("Checkpoint (and model) every N steps.")] public int CheckpointEvery { get; init; } = 100;
        [CommandOption("--checkpoint-dir <DIR>")] [InputOutput] [Description("Checkpoint folder (default MODELDIR.checkpoint).")] public string? CheckpointDir { get; init; }
        [CommandOption("--fp32")] [Description("Store the model weights as float32 (default float16).")] public bool Fp32 { get; init; }
        [CommandOption("--resume")] [Description("Continue from the checkpoint exactly where it stopped.")] public bool Resume { get; init; }
        [CommandOption("--max-minutes <M>")] [Description("Stop after M minutes of this invocation (checkpoint + model saved; --resume continues).")] public double? MaxMinutes { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data: must not be empty");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var o = new TrainBaseOptions
        {
            DataDir = s.Data!, OutDir = s.Out!, CheckpointDir = s.CheckpointDir, Config = s.Config, Steps = s.Steps, Batch = s.Batch,
            Accumulate = s.Accumulate, LearningRate = s.Lr, WarmupSteps = s.Warmup, WeightDecay = s.WeightDecay, ClipGradNorm = s.Clip,
            Size = s.Size, Crop = s.Crop, FullFrom = s.FullFrom, FullBatch = s.FullBatch, Seed = s.Seed, Threads = s.Threads, LowTBias = s.LowTBias, LowTMax = s.LowTMax, Ema = s.Ema,
            NullTokens = s.NullTokens, CheckpointEvery = s.CheckpointEvery, Fp16 = !s.Fp32, Resume = s.Resume, MaxMinutes = s.MaxMinutes,
        };
        OptionFlags.Check(o.Validate, OptionFlags.Training);
        OutputTarget.CheckFolder(o.OutDir, "--out");
        OutputTarget.CheckFolder(o.CheckpointPath, s.CheckpointDir is null ? "checkpoint folder" : "--checkpoint-dir");
        var r = OptionFlags.Check(() => TrainingConsole.Run("train-base", o.Steps, cancellationToken, cb => BaseModelTrainer.Run(o, cb.Progress, cb.Status, cb.Cancel)), OptionFlags.Training);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(r.StoppedByTimeLimit ? "stopped by --max-minutes" : r.StepsDone < r.TotalSteps ? "interrupted (--resume continues)" : "finished")} at step {r.StepsDone}/{r.TotalSteps}: last loss {r.FinalLoss:F4}, mean of last 100 {r.MeanLossLast100:F4}, {r.Seconds:F0} s, {r.Parameters:N0} UNet parameters; model in {o.OutDir}, checkpoint in {o.CheckpointPath}"));
        return r.StepsDone < r.TotalSteps && !r.StoppedByTimeLimit ? 130 : 0;
    }
}
