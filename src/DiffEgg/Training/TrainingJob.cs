using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DiffEgg.Common;

namespace DiffEgg.Training;

/// <summary>
/// Progress of a training run, reported after each optimizer step: <paramref name="ResumedFrom"/> is the step this invocation started after
/// and <paramref name="RunSeconds"/> the wall time of this invocation, so the ETA uses this invocation's speed; <paramref name="Detail"/> shows
/// the loss terms, if any.
/// </summary>
public readonly record struct TrainProgress(long Step, long TotalSteps, double Loss, double LearningRate, double Seconds,
    long ResumedFrom = 0, double RunSeconds = 0, string? Detail = null)
{
    /// <summary>Seconds to the last step at this invocation's mean speed (null before the first step).</summary>
    public double? EtaSeconds => Step > ResumedFrom ? RunSeconds / (Step - ResumedFrom) * (TotalSteps - Step) : null;
}

/// <summary>What one optimizer step reports: its mean loss, learning rate and the values of the log's extra columns.</summary>
public readonly record struct TrainStepResult(double Loss, double LearningRate, double[]? Extra = null);

/// <summary>Outcome of <see cref="TrainingJob.Run"/>.</summary>
public sealed record TrainingJobResult(long StepsDone, long TotalSteps, double FinalLoss, double MeanLossLast100, double Seconds,
    bool StoppedByTimeLimit, bool Cancelled, TrainingLog Log);

/// <summary>Learning-rate schedules of the trainers.</summary>
public static class LearningRateSchedule
{
    /// <summary>Linear warm-up: lr·min(1, step / warmup) for 1-based <paramref name="step"/>, then constant.</summary>
    public static double Constant(double lr, int warmup, long step) => warmup <= 0 ? lr : lr * Math.Min(1.0, (double)step / warmup);

    /// <summary>Linear warm-up, then cosine decay to 0 at <paramref name="total"/>: lr·½(1 + cos(π·(step − warmup)/(total − warmup))).</summary>
    public static double Cosine(double lr, int warmup, long step, long total)
    {
        if (step <= warmup) return Constant(lr, warmup, step);
        double f = Math.Clamp((double)(step - warmup) / Math.Max(1, total - warmup), 0, 1);
        return lr * 0.5 * (1 + Math.Cos(Math.PI * f));
    }
}

/// <summary>
/// A checkpoint folder: the trainer's files plus <c>state.json</c> (step, wall seconds, the trajectory options and any extra entries) and
/// <c>loss.csv</c> (the log up to that step). Written into <c>….tmp</c>, then swapped in; the previous one is renamed to <c>….old</c> until
/// the swap is done, and <see cref="Find"/> falls back to it — so a kill at any moment leaves one complete checkpoint.
/// </summary>
public static class TrainingCheckpoint
{
    public const string StateFile = "state.json";
    public const string LogFile = "loss.csv";

    /// <summary>The checkpoint folder to resume from: <paramref name="dir"/>, else <c>dir.old</c> (a kill during a swap), else null.</summary>
    public static string? Find(string dir)
    {
        string full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        if (File.Exists(Path.Combine(full, StateFile))) return full;
        if (File.Exists(Path.Combine(full + ".old", StateFile))) return full + ".old";
        return null;
    }

    /// <summary>Writes a checkpoint: <paramref name="writeFiles"/> fills the new folder, then state.json and the log are added and the folder is swapped in.</summary>
    public static void Save(string dir, long step, double seconds, IReadOnlyDictionary<string, string> options, TrainingLog log,
        Action<string> writeFiles, IReadOnlyDictionary<string, object>? extraState = null)
    {
        string full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        string tmp = full + ".tmp", old = full + ".old";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        writeFiles(tmp);
        log.WriteCsv(Path.Combine(tmp, LogFile));
        var state = new Dictionary<string, object> { ["step"] = step, ["seconds"] = seconds, ["options"] = options };
        if (extraState is not null) foreach (var (k, v) in extraState) state[k] = v;
        AtomicFile.WriteAllText(Path.Combine(tmp, StateFile), JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(full))
        {
            if (Directory.Exists(old)) Directory.Delete(old, true);
            Directory.Move(full, old);
        }
        Directory.Move(tmp, full);
        if (Directory.Exists(old)) Directory.Delete(old, true);
    }

    /// <summary>
    /// Reads step and seconds of a checkpoint and checks that its trajectory options equal <paramref name="options"/>; a difference is a
    /// <see cref="DiffEggException"/> naming the option (<c>options.NAME</c>).
    /// </summary>
    public static (long Step, double Seconds) ReadState(string dir, IReadOnlyDictionary<string, string> options, string allowedChanges)
    {
        string statePath = Path.Combine(dir, StateFile);
        if (!File.Exists(statePath)) throw new DiffEggException($"{statePath}: checkpoint state file not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(statePath));
            var r = doc.RootElement;
            long step = r.GetProperty("step").GetInt64();
            double seconds = r.GetProperty("seconds").GetDouble();
            var saved = r.GetProperty("options");
            foreach (var (k, v) in options)
            {
                string? s = saved.TryGetProperty(k, out var e) ? e.GetString() : null;
                if (s != v) throw new DiffEggException($"{statePath}: key 'options.{k}' = {s ?? "missing"} but this run has {v}; resume with the same options (only {allowedChanges} may change)");
            }
            return (step, seconds);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new DiffEggException($"{statePath}: invalid checkpoint state ({e.Message})");
        }
    }
}

/// <summary>
/// The training loop both trainers share: optional resume from a checkpoint (its step, seconds and log), one <see cref="Step"/> per optimizer
/// step, progress after each, and every <see cref="CheckpointEvery"/> steps — and at the last step, at the time limit and on cancellation —
/// a checkpoint, the outputs (<see cref="WriteOutputs"/>) and the log (CSV + PNG in <see cref="TrainingDir"/>). A cancelled run (Ctrl-C)
/// finishes its current step and checkpoints it; a killed run loses only the steps since the last checkpoint. Every random draw of a step
/// must come from that step's own seed (<see cref="StepSeed"/>) so that resuming reproduces the uninterrupted run. oneDNN is off while the
/// job runs (<see cref="TorchRuntime.TrainingConvolutions"/>); a step's forward pass may turn it back on (<see cref="TorchRuntime.ForwardConvolutions"/>).
/// </summary>
public sealed class TrainingJob
{
    public required long TotalSteps { get; init; }
    public required int CheckpointEvery { get; init; }
    public double? MaxMinutes { get; init; }
    public required string CheckpointDir { get; init; }
    /// <summary>Folder of the published <c>loss.csv</c> and <c>loss.png</c>.</summary>
    public required string TrainingDir { get; init; }
    public string[] ExtraColumns { get; init; } = Array.Empty<string>();
    public required string PlotTitle { get; init; }
    /// <summary>Options that must be equal on resume (see <see cref="TrainingCheckpoint.ReadState"/>).</summary>
    public required IReadOnlyDictionary<string, string> TrajectoryKey { get; init; }
    /// <summary>Option names that may change across a resume, for the error message.</summary>
    public string AllowedChanges { get; init; } = "--steps/--max-minutes";
    /// <summary>Runs optimizer step <c>step</c> (1-based).</summary>
    public required Func<long, TrainStepResult> Step { get; init; }
    /// <summary>Writes the trainer's state (weights, optimizer) into the given checkpoint folder.</summary>
    public required Action<string> WriteCheckpoint { get; init; }
    /// <summary>Reads the trainer's state back from the given checkpoint folder.</summary>
    public required Action<string> ReadCheckpoint { get; init; }
    /// <summary>Writes the published result (model or adapter folder).</summary>
    public required Action WriteOutputs { get; init; }
    public IReadOnlyDictionary<string, object>? ExtraState { get; init; }
    /// <summary>Refuse to start afresh over an existing checkpoint (it would be overwritten at the first checkpoint).</summary>
    public bool RefuseToOverwriteCheckpoint { get; init; }
    /// <summary>Formats the loss terms of a step for the progress line (null = none).</summary>
    public Func<TrainStepResult, string>? Detail { get; init; }

    /// <summary>The per-(step, micro-batch) generator seed: every random draw of a step comes from its own generator, so resume needs only the step.</summary>
    public static ulong StepSeed(long seed, long step, int micro) =>
        unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)step * 0xBF58476D1CE4E5B9UL + (ulong)micro * 0x94D049BB133111EBUL + 1UL);

    string CsvPath => Path.Combine(TrainingDir, "loss.csv");

    /// <summary>Runs (or with <paramref name="resume"/> continues) the job.</summary>
    public TrainingJobResult Run(bool resume, Action<TrainProgress>? progress = null, Action<string>? status = null, CancellationToken cancel = default)
    {
        using var convolutions = TorchRuntime.TrainingConvolutions();   // oneDNN's convolution backward is wrong on our CPUs: off for backward passes
        long start = 0;
        double secondsBefore = 0;
        var log = new TrainingLog(ExtraColumns);
        if (resume)
        {
            string dir = TrainingCheckpoint.Find(CheckpointDir) ?? throw new DiffEggException($"{CheckpointDir}: no checkpoint to resume from");
            (start, secondsBefore) = TrainingCheckpoint.ReadState(dir, TrajectoryKey, AllowedChanges);
            if (start >= TotalSteps) throw new DiffEggException($"{dir}: checkpoint is at step {start}, --steps {TotalSteps} leaves nothing to do");
            ReadCheckpoint(dir);
            string ckptLog = Path.Combine(dir, TrainingCheckpoint.LogFile);
            log = TrainingLog.ReadCsv(File.Exists(ckptLog) ? ckptLog : CsvPath, start, ExtraColumns);
            status?.Invoke($"resumed from {dir} at step {start}");
        }
        else if (RefuseToOverwriteCheckpoint && TrainingCheckpoint.Find(CheckpointDir) is string existing)
        {
            throw new DiffEggException($"{existing}: a checkpoint of an earlier run exists; continue it with --resume, or delete it to start afresh");
        }

        var clock = Stopwatch.StartNew();
        double lastLoss = double.NaN;
        bool timeUp = false;
        long step = start;
        while (step < TotalSteps && !timeUp && !cancel.IsCancellationRequested)
        {
            step++;
            var r = Step(step);
            lastLoss = r.Loss;
            double secs = secondsBefore + clock.Elapsed.TotalSeconds;
            log.Add(new TrainingLogRow(step, r.Loss, r.LearningRate, secs, r.Extra));
            progress?.Invoke(new TrainProgress(step, TotalSteps, r.Loss, r.LearningRate, secs, start, clock.Elapsed.TotalSeconds, Detail?.Invoke(r)));
            timeUp = MaxMinutes is double mm && clock.Elapsed.TotalMinutes >= mm;
            bool last = step == TotalSteps || timeUp || cancel.IsCancellationRequested;
            if (step % CheckpointEvery == 0 || last)
            {
                status?.Invoke($"step {step}: checkpoint → {CheckpointDir}");
                TrainingCheckpoint.Save(CheckpointDir, step, secs, TrajectoryKey, log, WriteCheckpoint, ExtraState);
                WriteOutputs();
                Directory.CreateDirectory(TrainingDir);
                log.WriteCsv(CsvPath);
                log.WritePlot(Path.Combine(TrainingDir, "loss.png"), PlotTitle);
            }
        }
        var tail = log.Rows.Skip(Math.Max(0, log.Rows.Count - 100)).Select(x => x.Loss).DefaultIfEmpty(double.NaN).Average();
        return new TrainingJobResult(step, TotalSteps, lastLoss, tail, secondsBefore + clock.Elapsed.TotalSeconds,
            timeUp && step < TotalSteps, cancel.IsCancellationRequested && step < TotalSteps, log);
    }
}
