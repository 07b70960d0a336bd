using System.Reflection;
using DiffEgg.Common;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli;

/// <summary>Builds the `diffegg` command tree. Each command lives in Commands/ and is registered here.</summary>
public static class DiffEggApp
{
    public static string Version =>
        typeof(DiffEggApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static CommandApp Build()
    {
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("diffegg");
            config.SetApplicationVersion(Version);
            config.PropagateExceptions();
            config.AddCommand<Commands.InfoCommand>("info")
                .WithDescription("Show DiffEgg's version, the tensor engine and the devices it can use.");
            config.AddCommand<Commands.EdgesCommand>("edges").WithDescription("DiffEGG edges for an image or a folder: training-free (PeakKL, EdgeKL, ternary), or one-step with --adapter (LoRA + edge generator from finetune).");
            config.AddCommand<Commands.SynthCommand>("synth").WithDescription("Write synthetic touching-objects scenes with COCO instances/panoptic ground truth and hard pairs.");
            config.AddCommand<Commands.BenchEdgesCommand>("bench-edges").WithDescription("Score edge methods on a synth folder (DiffEGG EdgeKL variants with --model, Sobel baselines): boundary P/R/F1 and AUC, all and hard-pair boundaries.");
            config.AddCommand<Commands.RefineCommand>("refine").WithDescription("Refine COCO instance masks with edge maps (Alg 4: CCL split, RIP, IoU merge).");
            config.AddCommand<Commands.PanopticCommand>("panoptic").WithDescription("Turn semantic masks + edge maps into COCO panoptic pseudo-labels (things split by RIP, stuff whole).");
            config.AddCommand<Commands.TrainBaseCommand>("train-base").WithDescription("Train a pixel-space base diffusion model from scratch on a folder of images (DDPM ε-prediction, EMA, checkpoints).");
            config.AddCommand<Commands.FinetuneCommand>("finetune").WithDescription("Self-supervised fine-tuning (Alg 3): LoRA + edge generator on the model's own pseudo-edges; writes an adapter folder for `edges --adapter`.");
            config.AddCommand<Commands.DemoCommand>("demo").WithDescription("The whole method out of the box: synthetic scenes, embedded-model edges, refinement of simulated masks, panoptic pseudo-labels, metrics and an HTML report.");
            config.AddBranch("eval", b =>
            {
                b.SetDescription("COCO evaluation: instance AP/AR (pycocotools) and panoptic PQ (panopticapi).");
                b.AddCommand<Commands.EvalInstancesCommand>("instances").WithDescription("COCO AP/AR of a results JSON against instances ground truth (segm or bbox).");
                b.AddCommand<Commands.EvalPanopticCommand>("panoptic").WithDescription("PQ/SQ/RQ of panoptic PNG+JSON predictions against ground truth.");
            });
        });
        return app;
    }

    /// <summary>Runs the CLI; user errors become one line on stderr and exit code 1 (2 for usage errors).</summary>
    public static int Run(string[] args)
    {
        try
        {
            return Build().Run(args);
        }
        catch (CommandParseException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        catch (CommandRuntimeException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        catch (Exception e) when (Unwrap(e) is DiffEggException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine("error: " + Unwrap(e).Message);
            return 1;
        }
    }

    static Exception Unwrap(Exception e) => e is TargetInvocationException or AggregateException && e.InnerException != null ? Unwrap(e.InnerException) : e;
}
