using System.Globalization;
using System.Runtime.InteropServices;
using DiffEgg.Training;
using Spectre.Console;

namespace DiffEgg.Cli.Commands;

/// <summary>
/// The console side of a training job (train-base, finetune): a progress bar with step, loss, loss terms, s/step and ETA (or, when the
/// output is not a terminal, one plain line every 30 s and at every status message), lines to keep on screen, and graceful stops:
/// Ctrl-C or SIGTERM lets the current step finish and writes a checkpoint (<c>--resume</c> continues); a second Ctrl-C exits at once.
/// </summary>
internal static class TrainingConsole
{
    /// <summary>Callbacks handed to the trainer.</summary>
    public sealed record Callbacks(Action<TrainProgress> Progress, Action<string> Status, Action<string> Info, CancellationToken Cancel);

    /// <summary>Runs <paramref name="run"/> under the progress display; returns its result.</summary>
    public static T Run<T>(string name, long totalSteps, CancellationToken outer, Func<Callbacks, T> run)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        void OnCancelKey(object? s, ConsoleCancelEventArgs e)
        {
            if (cts.IsCancellationRequested) return;   // second Ctrl-C: let the process end
            e.Cancel = true;
            cts.Cancel();
            Console.Error.WriteLine($"{name}: stopping after the current step (a checkpoint is written; --resume continues). Ctrl-C again to quit at once.");
        }
        Console.CancelKeyPress += OnCancelKey;
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cts.Cancel(); });
        try
        {
            if (!AnsiConsole.Profile.Capabilities.Interactive) return RunPlain(name, cts.Token, run);
            T result = default!;
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(name, maxValue: totalSteps);
                    result = run(new Callbacks(
                        p => { task.Value = p.Step; task.Description = Markup.Escape(Line(p)); },
                        msg => task.Description = Markup.Escape(msg),
                        msg => AnsiConsole.MarkupLine(Markup.Escape(msg)),
                        cts.Token));
                });
            return result;
        }
        finally { Console.CancelKeyPress -= OnCancelKey; }
    }

    static T RunPlain<T>(string name, CancellationToken cancel, Func<Callbacks, T> run)
    {
        var last = DateTime.MinValue;
        TrainProgress? latest = null;
        return run(new Callbacks(
            p =>
            {
                latest = p;
                if ((DateTime.UtcNow - last).TotalSeconds < 30 && p.Step != p.TotalSteps) return;
                last = DateTime.UtcNow;
                Console.WriteLine($"{name}: {Line(p)}");
            },
            msg => Console.WriteLine($"{name}: {(latest is { } p ? Line(p) + " | " : "")}{msg}"),
            msg => Console.WriteLine(msg),
            cancel));
    }

    /// <summary><c>step 120/2000 loss 0.4123 (dice 0.41 rec 1e-4) 1.95 s/step ETA 1:01:05</c>.</summary>
    public static string Line(TrainProgress p)
    {
        var ic = CultureInfo.InvariantCulture;
        double perStep = p.Step > p.ResumedFrom ? p.RunSeconds / (p.Step - p.ResumedFrom) : double.NaN;
        string eta = p.EtaSeconds is double e ? TimeSpan.FromSeconds(Math.Round(e)).ToString(@"h\:mm\:ss", ic) : "-";
        return string.Create(ic, $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{(p.Detail is null ? "" : $" ({p.Detail})")} lr {p.LearningRate:G3} {perStep:F2} s/step ETA {eta}");
    }
}
