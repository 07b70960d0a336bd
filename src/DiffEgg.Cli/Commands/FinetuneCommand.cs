using System.ComponentModel;
using System.Globalization;
using DiffEgg.Common;
using DiffEgg.FineTuning;
using DiffEgg.Models;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>`diffegg finetune`: self-supervised fine-tuning (Alg 3): LoRA + edge generator G_φ on pseudo-edges of `diffegg edges` (see docs/finetuning.md).</summary>
public sealed class FinetuneCommand : Command<FinetuneCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--model <DIR>")] [InputOutput] [Description("Diffusion model folder to adapt (default: the embedded model in models/embedded).")] public string? Model { get; init; }
        [CommandOption("--data <DIR>", isRequired: true)] [InputOutput] [Description("Training images: a folder of images or a synth output folder (its images/).")] public string? Data { get; init; }
        [CommandOption("--edges <DIR>", isRequired: true)] [InputOutput] [Description("Pseudo-edges: the --out folder of `diffegg edges` on the same images (stem.ternary.png each; needs interior pixels).")] public string? Edges { get; init; }
        [CommandOption("--out <DIR>", isRequired: true)] [InputOutput] [Description("Adapter folder to write (pytorch_lora_weights.safetensors, edge_generator.safetensors, config.json, training/).")] public string? Out { get; init; }
        [CommandOption("--steps <N>")] [DefaultValue(1000)] [Description("Optimizer steps in total (a resumed run continues up to N).")] public int Steps { get; init; } = 1000;
        [CommandOption("--batch <N>")] [DefaultValue(8)] [Description("Images per micro-batch.")] public int Batch { get; init; } = 8;
        [CommandOption("--accumulate <N>")] [DefaultValue(1)] [Description("Micro-batches per optimizer step (gradient accumulation).")] public int Accumulate { get; init; } = 1;
        [CommandOption("--lr <LR>")] [DefaultValue(1e-3)] [Description("AdamW peak learning rate (LoRA and G_φ).")] public double Lr { get; init; } = 1e-3;
        [CommandOption("--warmup <N>")] [DefaultValue(50)] [Description("Linear learning-rate warm-up steps.")] public int Warmup { get; init; } = 50;
        [CommandOption("--schedule <S>")] [DefaultValue("constant")] [Description("Learning rate after warm-up: constant or cosine (to 0 at --steps).")] public string Schedule { get; init; } = "constant";
        [CommandOption("--weight-decay <W>")] [DefaultValue(0.01)] [Description("AdamW weight decay.")] public double WeightDecay { get; init; } = 0.01;
        [CommandOption("--clip <N>")] [DefaultValue(1.0)] [Description("Gradient norm clip (0 = off).")] public double Clip { get; init; } = 1.0;
        [CommandOption("--size <PX>")] [DefaultValue(0)] [Description("Training resolution: images and pseudo-edges are centre-cropped to a square and resized to PX×PX (default: the model's native size). Written to the adapter's config.json as 'size': one-step edges run at it unless given --size.")] public int Size { get; init; }
        [CommandOption("--seed <S>")] [DefaultValue(0L)] [Description("Seed of the initialisation and of every random draw.")] public long Seed { get; init; }
        [CommandOption("--threads <N>")] [DefaultValue(2)] [Description("torch CPU threads.")] public int Threads { get; init; } = 2;
        [CommandOption("--rank <R>")] [Description("LoRA rank of every layer (default: min(64, min(in, out)/2) per layer); a rank larger than a layer allows is an error naming it.")] public int? Rank { get; init; }
        [CommandOption("--alpha <A>")] [Description("LoRA alpha (default: the rank, i.e. scale 1).")] public double? Alpha { get; init; }
        [CommandOption("--dropout <P>")] [DefaultValue(0.0)] [Description("LoRA dropout.")] public double Dropout { get; init; }
        [CommandOption("--lora-targets <LIST>")] [DefaultValue("attn")] [Description("attn (to_q, to_k, to_v, to_out.0 of attn1 and attn2), optionally with proj (proj_in/proj_out) and ff (feed-forward): e.g. attn,proj,ff.")] public string LoraTargets { get; init; } = "attn";
        [CommandOption("--fpn-channels <N>")] [DefaultValue(32)] [Description("Width of the edge generator's FPN.")] public int FpnChannels { get; init; } = 32;
        [CommandOption("--timestep <T>")] [DefaultValue(0)] [Description("τ of the UNet pass (Alg 3: 0).")] public int Timestep { get; init; }
        [CommandOption("--edge-threshold <P>")] [DefaultValue(EdgeAdapter.DefaultEdgeThreshold)] [Description("Written to the adapter's config.json: one-step edges mark the one-pixel skeleton of p ≥ P as edge (does not change training).")] public double EdgeThreshold { get; init; } = EdgeAdapter.DefaultEdgeThreshold;
        [CommandOption("--rec-weight <W>")] [DefaultValue(1.0)] [Description("Weight of the reconstruction term ‖I − Î‖² (Eq 3-4).")] public double RecWeight { get; init; } = 1.0;
        [CommandOption("--dice-weight <W>")] [DefaultValue(1.0)] [Description("Weight of the masked Dice term (Eq 7-8).")] public double DiceWeight { get; init; } = 1.0;
        [CommandOption("--rec-space <S>")] [DefaultValue("image")] [Description("Latent models: image (decode Î with the VAE) or latent (compare latents). Pixel-space models compare pixels.")] public string RecSpace { get; init; } = "image";
        [CommandOption("--checkpoint-every <N>")] [DefaultValue(100)] [Description("Checkpoint (and adapter) every N steps.")] public int CheckpointEvery { get; init; } = 100;
        [CommandOption("--checkpoint-dir <DIR>")] [InputOutput] [Description("Checkpoint folder (default OUT.checkpoint).")] public string? CheckpointDir { get; init; }
        [CommandOption("--fp32")] [Description("Store the adapter weights as float32 (default float16).")] public bool Fp32 { get; init; }
        [CommandOption("--resume")] [Description("Continue from the checkpoint exactly where it stopped.")] public bool Resume { get; init; }
        [CommandOption("--max-minutes <M>")] [Description("Stop after M minutes of this invocation (checkpoint + adapter saved; --resume continues).")] public double? MaxMinutes { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data: required (a folder)");
            if (string.IsNullOrWhiteSpace(Edges)) return ValidationResult.Error("--edges: required (the output folder of diffegg edges)");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: required (a folder)");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var o = new FineTuneOptions
        {
            ModelDir = string.IsNullOrWhiteSpace(s.Model) ? EmbeddedModel.DefaultPath : s.Model!, DataDir = s.Data!, EdgesDir = s.Edges!, OutDir = s.Out!,
            CheckpointDir = s.CheckpointDir, Steps = s.Steps, Batch = s.Batch, Accumulate = s.Accumulate, LearningRate = s.Lr, WarmupSteps = s.Warmup,
            Schedule = s.Schedule, WeightDecay = s.WeightDecay, ClipGradNorm = s.Clip, Size = s.Size, Seed = s.Seed, Threads = s.Threads,
            Rank = s.Rank, Alpha = s.Alpha, Dropout = s.Dropout, Targets = s.LoraTargets, FpnChannels = s.FpnChannels, Timestep = s.Timestep, EdgeThreshold = s.EdgeThreshold,
            RecWeight = s.RecWeight, DiceWeight = s.DiceWeight, RecSpace = s.RecSpace, CheckpointEvery = s.CheckpointEvery, Fp16 = !s.Fp32,
            Resume = s.Resume, MaxMinutes = s.MaxMinutes,
        };
        OptionFlags.Check(o.Validate, OptionFlags.Training);
        OutputTarget.CheckFolder(o.OutDir, "--out");
        OutputTarget.CheckFolder(o.CheckpointPath, s.CheckpointDir is null ? "checkpoint folder" : "--checkpoint-dir");
        var r = OptionFlags.Check(() => TrainingConsole.Run("finetune", o.Steps, cancellationToken, cb => FineTuneTrainer.Run(o, cb.Progress, cb.Status, cb.Info, cb.Cancel)), OptionFlags.Training);
        var tail = r.Log.Rows.Skip(Math.Max(0, r.Log.Rows.Count - 100)).ToList();
        double dice = tail.Count > 0 ? tail.Average(x => x.Extra![0]) : double.NaN;
        string how = r.StoppedByTimeLimit ? "stopped by --max-minutes" : r.Cancelled ? "interrupted (--resume continues)" : "finished";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{how} at step {r.StepsDone}/{r.TotalSteps}: last loss {r.FinalLoss:F4}, mean of last 100 {r.MeanLossLast100:F4} (Dice term {dice:F4}), {r.Seconds:F0} s; {r.LoraParameters:N0} LoRA + {r.GeneratorParameters:N0} G_φ parameters; adapter in {o.OutDir}, checkpoint in {o.CheckpointPath}"));
        return r.Cancelled ? 130 : 0;
    }
}
