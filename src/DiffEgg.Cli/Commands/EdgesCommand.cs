using System.ComponentModel;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.FineTuning;
using DiffEgg.Models;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary><c>diffegg edges</c>: training-free DiffEGG edges for an image or a folder (options only; the work is <see cref="EdgePipeline"/>).</summary>
public sealed class EdgesCommand : Command<EdgesCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--model <DIR>")]
        [Description("diffusers model folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/; no vae/ = pixel space). Default: the embedded model in models/embedded")]
        public string Model { get; set; } = "";

        [CommandOption("--input <PATH>")]
        [Description("an image or a folder of images")]
        public string Input { get; set; } = "";

        [CommandOption("--out <DIR>")]
        [Description("output folder")]
        public string Out { get; set; } = "";

        [CommandOption("--timesteps <LIST>")]
        [Description("decreasing timesteps scanned by PeakKL (default 200,150,100,50,10)")]
        public string Timesteps { get; set; } = "200,150,100,50,10";

        [CommandOption("--fixed-timestep <T>")]
        [Description("use this single timestep instead of PeakKL")]
        public int? FixedTimestep { get; set; }

        [CommandOption("--metric <M>")]
        [Description("row divergence of EdgeKL: kl, jsd, l2 or cos (default kl)")]
        public string Metric { get; set; } = "kl";

        [CommandOption("--size <N>")]
        [Description("long side of the processed image; sides are rounded to a multiple of VAE factor × UNet factor (64 for SD 1.5). Default: the model's native size, sample_size × VAE factor (512 for SD 1.5, 64 for the embedded model)")]
        public int? Size { get; set; }

        [CommandOption("--seed <S>")]
        [Description("seed of the noise (default 0)")]
        public long Seed { get; set; }

        [CommandOption("--adapter <DIR>")]
        [Description("one-step edges: an adapter folder written by `diffegg finetune` (LoRA + edge generator); ONE UNet pass at the adapter's timestep instead of PeakKL + EdgeKL (--timesteps, --fixed-timestep and --metric are not used). Without it the training-free pipeline runs")]
        public string? Adapter { get; set; }

        [CommandOption("--device <D>")]
        [Description("cpu or cuda (default cpu)")]
        public string Device { get; set; } = "cpu";

        /// <summary>Checks the options before anything is loaded.</summary>
        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Input)) return ValidationResult.Error("--input is required");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out is required");
            if (Size is < 8) return ValidationResult.Error($"--size {Size}: must be at least 8");
            if (ParseMetric(Metric) is null) return ValidationResult.Error($"--metric {Metric}: use kl, jsd, l2 or cos");
            if (ParseTimesteps(Timesteps) is null) return ValidationResult.Error($"--timesteps {Timesteps}: expected a comma-separated list of integers");
            if (!string.IsNullOrWhiteSpace(Adapter) && FixedTimestep is not null)
                return ValidationResult.Error("--fixed-timestep cannot be combined with --adapter (one-step edges use the adapter's own timestep)");
            return ValidationResult.Success();
        }
    }

    internal static EdgeMetric? ParseMetric(string m) => m.Trim().ToLowerInvariant() switch
    {
        "kl" => EdgeMetric.KL,
        "jsd" => EdgeMetric.JSD,
        "l2" => EdgeMetric.L2,
        "cos" or "cosine" => EdgeMetric.Cosine,
        _ => null,
    };

    internal static int[]? ParseTimesteps(string s)
    {
        var parts = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var r = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++) if (!int.TryParse(parts[i], out r[i])) return null;
        return r.Length == 0 ? null : r;
    }

    /// <summary>Loads the model once, then runs EdgePipeline on every image (PeakKL Alg 1, EdgeKL Eq 6, ternary Alg 2).</summary>
    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var device = TorchRuntime.ResolveDevice(s.Device);
        var images = ImageIO.ListImages(s.Input);
        if (images.Count == 0) throw new DiffEggException($"{s.Input}: no images found");
        string modelDir = string.IsNullOrWhiteSpace(s.Model) ? EmbeddedModel.DefaultPath : s.Model;
        using var model = DiffusionModelFolder.Load(modelDir, device);
        var options = new EdgePipelineOptions
        {
            Timesteps = ParseTimesteps(s.Timesteps)!,
            FixedTimestep = s.FixedTimestep,
            Metric = ParseMetric(s.Metric)!.Value,
            Size = s.Size ?? model.Unet.Config.SampleSize * (model.Vae?.DownFactor ?? 1),
            Seed = s.Seed,
        };
        EdgeAdapter? adapter = string.IsNullOrWhiteSpace(s.Adapter) ? null : EdgeAdapter.Load(s.Adapter!, model.Unet);
        using var adapterOwner = adapter;
        EdgePipeline? pipeline = null;
        OneStepEdgePipeline? oneStep = null;
        try
        {
            if (adapter is null) pipeline = new EdgePipeline(model, options);
            else
            {
                oneStep = new OneStepEdgePipeline(model, adapter, options);
                adapter.Lora.Merge();   // this command uses the UNet only with the adapter: fold LoRA into the weights once
            }
        }
        catch (ArgumentException e) { throw new DiffEggException("edges: " + e.Message); }
        using var _ = pipeline;
        using var __ = oneStep;

        var failures = new List<string>();
        AnsiConsole.Progress().AutoClear(false).Start(ctx =>
        {
            var task = ctx.AddTask("edges", maxValue: images.Count);
            foreach (var path in images)
            {
                if (cancellationToken.IsCancellationRequested) break;
                string stem = Path.GetFileNameWithoutExtension(path);
                try
                {
                    var img = ImageIO.ReadRgb(path);
                    if (oneStep is not null)
                    {
                        using var r1 = oneStep.Run(img);
                        oneStep.Write(r1, s.Out, stem, path);
                    }
                    else
                    {
                        using var r = pipeline!.Run(img);
                        pipeline.Write(r, s.Out, stem, path);
                    }
                }
                catch (Exception e) when (e is DiffEggException or IOException or ArgumentException or UnauthorizedAccessException)
                {
                    failures.Add($"{path}: {e.Message}");
                    AnsiConsole.MarkupLineInterpolated($"[red]failed[/] {e.Message}");
                }
                task.Increment(1);
            }
        });
        Console.WriteLine($"edges: {images.Count - failures.Count} of {images.Count} image(s) written to {s.Out}");
        if (failures.Count > 0)
        {
            Console.Error.WriteLine($"error: {failures.Count} image(s) failed: " + string.Join("; ", failures));
            return 1;
        }
        return 0;
    }
}
