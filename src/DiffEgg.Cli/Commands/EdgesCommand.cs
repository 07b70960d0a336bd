using System.ComponentModel;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.FineTuning;
using DiffEgg.Models;
using DiffEgg.Sharding;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary><c>diffegg edges</c>: training-free DiffEGG edges for an image or a folder (options only; the work is <see cref="EdgePipeline"/>).</summary>
public sealed class EdgesCommand : Command<EdgesCommand.Settings>
{
    public sealed class Settings : ShardSettings
    {
        [CommandOption("--model <DIR>")] [InputOutput]
        [Description("diffusers model folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/; no vae/ = pixel space). Default: the embedded model in models/embedded")]
        public string Model { get; set; } = "";

        [CommandOption("--input <PATH>", isRequired: true)] [InputOutput]
        [Description("an image or a folder of images (PNG, JPEG, BMP, WebP)")]
        public string Input { get; set; } = "";

        [CommandOption("--out <DIR>", isRequired: true)] [InputOutput]
        [Description("output folder: <stem>.ternary.png, <stem>.edges.safetensors, <stem>.json per image")]
        public string Out { get; set; } = "";

        [CommandOption("--timesteps <LIST>")] [DefaultValue(EdgePipelineOptions.DefaultTimestepList)]
        [Description("decreasing timesteps scanned by PeakKL")]
        public string Timesteps { get; set; } = EdgePipelineOptions.DefaultTimestepList;

        [CommandOption("--fixed-timestep <T>")]
        [Description("use this single timestep instead of PeakKL")]
        public int? FixedTimestep { get; set; }

        [CommandOption("--metric <M>")] [DefaultValue("kl")]
        [Description("row divergence of EdgeKL: kl, jsd, l2 or cos")]
        public string Metric { get; set; } = "kl";

        [CommandOption("--size <N>")]
        [Description("long side of the processed image; sides are rounded to a multiple of VAE factor × UNet factor (64 for SD 1.5). Default: the model's native size, sample_size × VAE factor (512 for SD 1.5, 64 for the embedded model); with --adapter the size the adapter was trained at (its config.json 'size'; 32 for the shipped edge-adapter-fast). Memory grows with the pixels, time with their square (docs/edge-quality.md)")]
        public int? Size { get; set; }

        [CommandOption("--max-memory <SIZE>")]
        [Description("memory budget of the whole process, e.g. 8GB or 512MB (GB = 2^30 bytes): an image whose estimated peak exceeds it is refused before it starts, and the attention rows are streamed in blocks of an eighth of it (16 MB to 256 MB). Default: what the machine has available when the image starts, blocks of 256 MB")]
        public string? MaxMemory { get; set; }

        [CommandOption("--estimate-only")]
        [Description("print each image's processing size and estimated peak memory (read from the model's config.json files; no weights are loaded), write nothing, and stop")]
        public bool EstimateOnly { get; set; }

        [CommandOption("--ternary <RULE>")] [DefaultValue(TernaryRule.DefaultName)]
        [Description("thresholds of the ternary map (Alg 2): log-interior (the paper's edge test E > μ+σ, the interior test on ln E), musigma (the paper's μ±σ), log (μ±σ of ln E), auto (musigma or log per map), quantile or quantile:LO,HI; recorded in the JSON as ternary_rule")]
        public string Ternary { get; set; } = TernaryRule.DefaultName;

        [CommandOption("--seed <S>")] [DefaultValue(0L)]
        [Description("seed of the noise")]
        public long Seed { get; set; }

        [CommandOption("--adapter <DIR>")] [InputOutput]
        [Description("one-step edges: an adapter folder written by `diffegg finetune` (LoRA + edge generator); ONE UNet pass at the adapter's timestep instead of PeakKL + EdgeKL (--timesteps, --fixed-timestep and --metric are not used). Without it the training-free pipeline runs")]
        public string? Adapter { get; set; }

        [CommandOption("--batch <N>")]
        [Description("with --adapter: images per UNet pass (images of one processed size are batched). Default: as many as fit 16K processed pixels, at most 16 (4 at 64×64, 1 from 128×128)")]
        public int? Batch { get; set; }

        [CommandOption("--workers <N>")]
        [Description("images processed at the same time, each on cores ÷ N torch threads (memory: one image's peak per worker). Default: 2 on a machine with 2 or more cores when --size is 128 or less (a small image keeps two threads of one forward pass poorly busy), else 1")]
        public int? Workers { get; set; }

        [CommandOption("--device <D>")] [DefaultValue("cpu")]
        [Description("cpu or cuda")]
        public string Device { get; set; } = "cpu";

        /// <summary>Checks the options before anything is loaded.</summary>
        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Input)) return ValidationResult.Error("--input: must not be empty");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            if (Size is < 8) return ValidationResult.Error($"--size {Size}: must be at least 8");
            if (ParseMetric(Metric) is null) return ValidationResult.Error($"--metric {Metric}: use kl, jsd, l2 or cos");
            if (TernaryRule.TryParse(Ternary) is null) return ValidationResult.Error($"--ternary {Ternary}: use {TernaryRule.Names}");
            if (ParseTimesteps(Timesteps) is null) return ValidationResult.Error($"--timesteps {Timesteps}: expected a comma-separated list of integers");
            if (MaxMemory is not null && EdgeMemory.TryParseSize(MaxMemory) is null) return ValidationResult.Error($"--max-memory {MaxMemory}: expected a size such as 8GB, 512MB or 1.5G");
            if (Batch is < 1) return ValidationResult.Error($"--batch {Batch}: must be at least 1");
            if (Batch is not null && string.IsNullOrWhiteSpace(Adapter)) return ValidationResult.Error("--batch: only with --adapter (the training-free pipeline runs one image at a time)");
            if (Workers is < 1) return ValidationResult.Error($"--workers {Workers}: must be at least 1");
            if (Workers is not null && !string.IsNullOrWhiteSpace(Adapter)) return ValidationResult.Error("--workers: not with --adapter (one-step edges batch images into one pass instead; see --batch)");
            if (!string.IsNullOrWhiteSpace(Adapter) && FixedTimestep is not null)
                return ValidationResult.Error("--fixed-timestep: cannot be combined with --adapter (one-step edges use the adapter's own timestep)");
            return ValidationResult.Success();
        }
    }

    static RgbImage ReadImage(string path)
    {
        var img = ImageIO.ReadRgb(path, out var info);
        if (info.DroppedAlpha) CliOutput.Note(path, "has transparent pixels; the alpha channel is dropped (colours used as stored, not composited)");
        return img;
    }

    /// <summary>
    /// One-step edges of a folder: consecutive images of one processed size go through the UNet together, up to --batch (one pass
    /// without attention capture: no (h·w)² maps, so no refusal by the capture estimate).
    /// </summary>
    static void RunOneStep(OneStepEdgePipeline oneStep, Settings s, IReadOnlyList<string> images, ResizeNotes resized, ProgressTask task,
        List<(string Path, string Message)> failures, CancellationToken cancellationToken)
    {
        var batch = new List<(string Path, RgbImage Image)>();
        (int W, int H) batchSize = default;
        int limit = 1;
        void Flush()
        {
            if (batch.Count == 0) return;
            task.Description = Markup.Escape($"{Path.GetFileName(batch[^1].Path)} ({task.Value + batch.Count:0}/{images.Count})");
            try
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                var results = oneStep.RunBatch(batch.Select(b => b.Image).ToList());
                for (int k = 0; k < batch.Count; k++)
                {
                    using var r = results[k];
                    try { oneStep.Write(r, s.Out, Path.GetFileNameWithoutExtension(batch[k].Path), batch[k].Path); }
                    catch (Exception e) when (e is DiffEggException or IOException or UnauthorizedAccessException) { failures.Add((batch[k].Path, e.Message)); }
                }
            }
            catch (Exception e) when (e is DiffEggException or IOException or UnauthorizedAccessException)
            {
                foreach (var (path, _) in batch) failures.Add((path, e.Message));
            }
            task.Increment(batch.Count);
            batch.Clear();
        }
        foreach (var path in images)
        {
            if (cancellationToken.IsCancellationRequested) break;
            RgbImage img;
            try { img = ReadImage(path); }
            catch (Exception e) when (e is DiffEggException or IOException or UnauthorizedAccessException)
            {
                failures.Add((path, e.Message));
                task.Increment(1);
                continue;
            }
            var size = oneStep.ProcessedSizeOf(img.Width, img.Height);
            resized.Note(Path.GetFileName(path), img.Width, img.Height, size.Width, size.Height);
            if (batch.Count > 0 && size != batchSize) Flush();
            if (batch.Count == 0) { batchSize = size; limit = s.Batch ?? OneStepEdgePipeline.DefaultBatch(size.Width, size.Height); }
            batch.Add((path, img));
            if (batch.Count >= limit) Flush();
        }
        if (!cancellationToken.IsCancellationRequested) Flush();
    }

    /// <summary>
    /// Images processed at the same time when --workers is not given: 2 on a machine with 2 or more cores for processing sizes of 128 px
    /// or less (a small image keeps two threads of one forward pass poorly busy; measured in docs/edge-quality.md, "Folders of small
    /// images"), else 1.
    /// </summary>
    internal static int DefaultWorkers(int size) => Environment.ProcessorCount >= 2 && size <= 128 ? 2 : 1;

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

    /// <summary>
    /// Checks the input and the output folder, loads the model once, then runs EdgePipeline on every image (PeakKL Alg 1, EdgeKL Eq 6,
    /// ternary Alg 2): says when the processing size differs from the image's, refuses an image whose estimated peak memory exceeds the
    /// budget before it starts, shows progress per UNet pass, and reports each failed image on stderr.
    /// </summary>
    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var images = ImageIO.ListImages(s.Input);
        if (images.Count == 0) throw new DiffEggException($"{s.Input}: no images found ({string.Join(", ", ImageIO.ImageExtensions)})");
        string modelDir = string.IsNullOrWhiteSpace(s.Model) ? EmbeddedModel.DefaultPath : s.Model;
        long? budget = s.MaxMemory is null ? null : EdgeMemory.TryParseSize(s.MaxMemory);
        if (s.EstimateOnly) return Estimate(s, images, modelDir, budget);
        OutputTarget.CheckFolder(s.Out, "--out");
        // shards and --resume: this process's images (every n-th by file name), less those whose three files exist in --out
        var shard = ShardRun.Start(ShardLayout.Edges, s, s.Out);
        var mine = shard.Select(images);
        images = mine.Where(p => !shard.Skip(Path.GetFileName(p))).ToList();
        int skipped = mine.Count - images.Count;
        if (skipped > 0) Console.WriteLine($"edges: {skipped} image(s) skipped: their files exist in {s.Out} (--overwrite to redo them)");
        if (images.Count == 0)
        {
            if (shard.UseParts) shard.WriteManifest(mine.Select(p => Path.GetFileName(p)).ToList(), 0, skipped, Array.Empty<ShardFailure>());
            return 0;
        }
        var device = TorchRuntime.ResolveDevice(s.Device);
        using var model = DiffusionModelFolder.Load(modelDir, device);
        int nativeSize = model.Unet.Config.SampleSize * (model.Vae?.DownFactor ?? 1);
        EdgeAdapter? adapter = string.IsNullOrWhiteSpace(s.Adapter) ? null : EdgeAdapter.Load(s.Adapter!, model.Unet);
        using var adapterOwner = adapter;
        var options = new EdgePipelineOptions
        {
            Timesteps = ParseTimesteps(s.Timesteps)!,
            FixedTimestep = s.FixedTimestep,
            Metric = ParseMetric(s.Metric)!.Value,
            Size = s.Size ?? adapter?.Size ?? nativeSize,
            Seed = s.Seed,
            Ternary = TernaryRule.TryParse(s.Ternary)!,
            ChunkBytes = EdgeMemory.ChunkBytesFor(budget),
        };
        EdgePipeline? pipeline = null;
        OneStepEdgePipeline? oneStep = null;
        // the pipelines' constructors check the timesteps and size against the model (InvalidOptionException: this command's flags)
        if (adapter is null) pipeline = OptionFlags.Check(() => new EdgePipeline(model, options));
        else
        {
            oneStep = OptionFlags.Check(() => new OneStepEdgePipeline(model, adapter, options));
            adapter.Lora.Merge();   // this command uses the UNet only with the adapter: fold LoRA into the weights once
        }
        using var _ = pipeline;
        using var __ = oneStep;
        string sizeReason = s.Size is not null ? $"--size {s.Size}"
            : adapter?.Size is int adapterSize ? $"the adapter's size {adapterSize}; --size to change" : $"model native size {nativeSize}; --size to change";
        var resized = new ResizeNotes(sizeReason);

        var failures = new List<(string Path, string Message)>();
        int passes = pipeline?.Passes ?? 1;
        AnsiConsole.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("edges", maxValue: images.Count * passes);
                if (oneStep is not null) { RunOneStep(oneStep, s, images, resized, task, failures, cancellationToken); return; }
                int workers = s.Workers ?? DefaultWorkers(options.Size);
                int next = -1, done = 0;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo? bug = null;   // a worker's unexpected exception stops the others
                void Work()
                {
                    for (int i; !cancellationToken.IsCancellationRequested && bug is null && (i = Interlocked.Increment(ref next)) < images.Count;)
                    {
                        string path = images[i], name = Path.GetFileName(path), stem = Path.GetFileNameWithoutExtension(path);
                        int reported = 0;
                        try
                        {
                            var img = ReadImage(path);
                            var (pw, ph) = pipeline!.ProcessedSizeOf(img.Width, img.Height);
                            resized.Note(name, img.Width, img.Height, pw, ph);
                            CheckMemory(model, path, img.Width, img.Height, pw, ph, passes, pipeline.SizeMultiple, budget);
                            using var r = pipeline.Run(img, (passDone, _) => { task.Increment(passDone - reported); reported = passDone; });
                            pipeline.Write(r, s.Out, stem, path);
                        }
                        catch (Exception e) when (e is DiffEggException or IOException or UnauthorizedAccessException)
                        {
                            lock (failures) failures.Add((path, e.Message));
                        }
                        task.Increment(passes - reported);
                        task.Description = Markup.Escape($"{name} ({Interlocked.Increment(ref done)}/{images.Count})");
                    }
                }
                if (workers == 1) { Work(); return; }
                // one forward pass of a small image keeps two torch threads poorly busy: several images at once, each on fewer threads
                // (torch.set_num_threads sets the calling thread's OpenMP team size)
                int threads = Math.Max(1, Environment.ProcessorCount / workers), previousThreads = TorchSharp.torch.get_num_threads();
                var pool = Enumerable.Range(0, workers).Select(_ => new Thread(() =>
                {
                    TorchSharp.torch.set_num_threads(threads);
                    try { Work(); }
                    catch (Exception e) { bug ??= System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e); }   // not a user error: rethrown below, on the command's thread
                })).ToList();
                foreach (var t in pool) t.Start();
                foreach (var t in pool) t.Join();
                TorchSharp.torch.set_num_threads(previousThreads);   // libtorch also keeps the count process-wide
                bug?.Throw();
            });
        var order = images.Select((p, k) => (p, k)).ToDictionary(x => x.p, x => x.k);
        failures.Sort((a, b) => order[a.Path].CompareTo(order[b.Path]));   // workers finish in any order: report in the images' order
        resized.Summary();
        foreach (var (path, message) in failures) CliOutput.Failure(path, message);
        if (cancellationToken.IsCancellationRequested)
        {
            CliOutput.Error($"{s.Out}: interrupted; the images written so far are complete — rerun with --resume (or the same shard) to continue");
            return 130;
        }
        int written = images.Count - failures.Count;
        if (shard.UseParts)
            shard.WriteManifest(mine.Select(p => Path.GetFileName(p)).ToList(), written, skipped, failures.Select(f => new ShardFailure(Path.GetFileName(f.Path), f.Path, f.Message)).ToList());
        if (written > 0) Console.WriteLine($"edges: {written} of {images.Count} image(s) written to {s.Out}");
        if (failures.Count > 0)
        {
            CliOutput.Error(written == 0
                ? $"{s.Out}: nothing written: all {images.Count} image(s) failed"
                : $"{s.Out}: {failures.Count} of {images.Count} image(s) failed and have no edges there");
            return 1;
        }
        return 0;
    }

    /// <summary>
    /// --estimate-only: the processing size and the estimated peak memory of every image from the model's configurations (no weights
    /// loaded, nothing written); says which images would not fit in --max-memory (the whole process, so the model's weights come on top
    /// of the estimate) or in the memory available now.
    /// </summary>
    static int Estimate(Settings s, IReadOnlyList<string> images, string modelDir, long? budget)
    {
        var (unet, vae) = EdgeMemory.ReadConfigs(modelDir);
        int vaeFactor = vae is null ? 1 : 1 << (vae.BlockOutChannels.Length - 1);
        int multiple = vaeFactor * (1 << (unet.BlockOutChannels.Length - 1));
        int size = s.Size ?? unet.SampleSize * vaeFactor;
        int passes = s.FixedTimestep is null ? ParseTimesteps(s.Timesteps)!.Length : 1;
        long available = EdgeMemory.AvailableBytes();
        int failed = 0;
        foreach (var path in images)
        {
            try
            {
                var img = ImageIO.ReadRgb(path);
                var (pw, ph) = EdgePipeline.ProcessedSize(img.Width, img.Height, size, multiple);
                long need = EdgeMemory.EstimateBytes(unet, vae, pw, ph, passes, EdgeMemory.ChunkBytesFor(budget));
                string fits = need > (budget ?? available) ? $"; more than {(budget is null ? $"the {EdgeMemory.Format(available)} available now" : "--max-memory")}" : "";
                Console.WriteLine($"{Path.GetFileName(path)}: {img.Width}×{img.Height} → processed at {pw}×{ph}: estimated peak {EdgeMemory.Format(need)} ({need} bytes) on top of the loaded model, {passes} UNet pass(es){fits}");
            }
            catch (DiffEggException e) { CliOutput.Failure(path, e.Message); failed++; }
        }
        return failed > 0 ? 1 : 0;
    }

    /// <summary>
    /// Refuses (with a <see cref="DiffEggException"/> naming the image, the size and the estimate) an image whose estimated peak memory
    /// (<see cref="EdgeMemory"/>) exceeds <paramref name="budget"/> (the whole process) or, without a budget, the memory available now.
    /// </summary>
    internal static void CheckMemory(DiffusionModelFolder model, string path, int w, int h, int pw, int ph, int passes, int multiple, long? budget)
    {
        long need = EdgeMemory.EstimateBytes(model, pw, ph, passes, EdgeMemory.ChunkBytesFor(budget));
        long used = EdgeMemory.ProcessBytes();
        long room = budget is long b ? b - used : EdgeMemory.AvailableBytes();
        if (need <= room) return;
        string limit = budget is long bb
            ? $"the --max-memory budget of {EdgeMemory.Format(bb)} (the process already uses {EdgeMemory.Format(used)})"
            : $"the {EdgeMemory.Format(room)} this machine has available";
        int fits = room > 0 ? EdgeMemory.LargestSizeWithin(model, w, h, multiple, passes, room) : 0;
        string advice = fits > 0 ? $"; --size {fits} or smaller fits" : "";
        throw new DiffEggException($"{path}: processing at {pw}×{ph} needs about {EdgeMemory.Format(need)} (estimated peak), more than {limit}{advice}");
    }

    /// <summary>
    /// "a.png: 40×24 → processed at 32×16 (reason)" for the first <see cref="Shown"/> images processed at another size than their own, then
    /// one summary line with the count of the rest (a folder of thousands resized by default, e.g. by an adapter's size, is not one line each).
    /// </summary>
    sealed class ResizeNotes(string reason)
    {
        public const int Shown = 10;
        int _count;

        public void Note(string name, int width, int height, int processedWidth, int processedHeight)
        {
            if (processedWidth == width && processedHeight == height) return;
            if (Interlocked.Increment(ref _count) <= Shown)
                AnsiConsole.WriteLine($"{name}: {width}×{height} → processed at {processedWidth}×{processedHeight} ({reason})");
        }

        public void Summary()
        {
            if (_count > Shown) AnsiConsole.WriteLine($"… and {_count - Shown} more image(s) processed at another size than their own ({reason})");
        }
    }
}
