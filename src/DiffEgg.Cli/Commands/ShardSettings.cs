using System.ComponentModel;
using DiffEgg.Common;
using DiffEgg.Formats;
using DiffEgg.Sharding;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary>Options of every per-image command for sharded and resumable runs (docs/scale-out.md).</summary>
public class ShardSettings : CommandSettings
{
    [CommandOption("--shard-index <I>")] [Description("This process's shard, 0 ≤ I < --shard-count. Default: the scheduler's array index (Slurm SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN, Kubernetes JOB_COMPLETION_INDEX, AWS Batch AWS_BATCH_JOB_ARRAY_INDEX), else not sharded.")]
    public int? ShardIndex { get; init; }
    [CommandOption("--shard-count <N>")] [Description("Number of shards (items sorted by image id or file name; item k belongs to shard k mod N). A sharded run writes OUT.parts/ (merge with `diffegg merge OUT`). Default: the scheduler's count (SLURM_ARRAY_TASK_COUNT, DIFFEGG_SHARD_COUNT, AWS_BATCH_JOB_ARRAY_SIZE), else 1.")]
    public int? ShardCount { get; init; }
    [CommandOption("--resume")] [Description("Unsharded run in the OUT.parts/ layout: skip images whose part exists, then assemble OUT (sharded runs always skip existing parts).")]
    public bool Resume { get; init; }
    [CommandOption("--overwrite")] [Description("Recompute images whose part exists instead of skipping them.")]
    public bool Overwrite { get; init; }
}

/// <summary>
/// One run of a per-image command under the shard contract: which items are this process's, which are skipped because their part
/// exists, and the manifest written at the end. Unsharded runs without --resume do not use it (they write OUT directly as before).
/// </summary>
internal sealed class ShardRun
{
    readonly string _command;
    readonly bool _overwrite;
    public ShardSpec Shard { get; }
    public ShardParts Parts { get; }
    /// <summary>True when parts are written under OUT.parts/ (sharded, or --resume).</summary>
    public bool UseParts { get; }

    ShardRun(string command, ShardSpec shard, ShardParts parts, bool useParts, bool overwrite)
    {
        _command = command; Shard = shard; Parts = parts; UseParts = useParts; _overwrite = overwrite;
    }

    /// <summary>Resolves the shard (command line, then scheduler variables) and says which source was used.</summary>
    public static ShardRun Start(string command, ShardSettings s, string output)
    {
        var shard = ShardSpec.Resolve(s.ShardIndex, s.ShardCount, Environment.GetEnvironmentVariable);
        var run = new ShardRun(command, shard, new ShardParts(output), shard.IsSharded || s.Resume, s.Overwrite);
        if (shard.IsSharded) Console.WriteLine($"{command}: {shard}; parts → {run.Parts.Dir}");
        else if (s.Resume) Console.WriteLine($"{command}: --resume: parts → {run.Parts.Dir}");
        if (run.UseParts) run.Parts.Create();
        return run;
    }

    /// <summary>This shard's items of the sorted list.</summary>
    public IReadOnlyList<T> Select<T>(IReadOnlyList<T> sorted) => Shard.Select(sorted);

    /// <summary>True when the item's part exists and may be kept (parts layout and no --overwrite).</summary>
    public bool Skip(string item) => UseParts && !_overwrite && ShardLayout.IsDone(_command, Parts, item);

    /// <summary>
    /// Writes the manifest (<see cref="WriteManifest"/>); then an unsharded --resume run assembles OUT from the parts (unless every
    /// image failed: then OUT is left as it was). Returns the exit code: 1 when an image failed.
    /// </summary>
    public int Finish(IReadOnlyList<string> items, int done, int skipped, IReadOnlyList<ShardFailure> failed, IReadOnlyList<CocoImage>? images = null)
    {
        WriteManifest(items, done, skipped, failed, images);
        if (!Shard.IsSharded)
        {
            if (done + skipped == 0 && items.Count > 0)
            {
                CliOutput.Error($"{Parts.Out}: not written: all {items.Count} image(s) failed{(File.Exists(Parts.Out) || Directory.Exists(Parts.Out) ? "; the existing output is left as it was" : "")}");
                return 1;
            }
            Console.WriteLine(ShardMerge.Merge(Parts.Out, allowMissing: true).Message);
        }
        if (failed.Count == 0) return 0;
        CliOutput.Error($"{(Shard.IsSharded ? Parts.Dir : Parts.Out)}: {failed.Count} of {items.Count} image(s) failed and have no part");
        return 1;
    }

    /// <summary>Writes the shard's manifest (always, even with no items or only failures) and prints its counts.</summary>
    public void WriteManifest(IReadOnlyList<string> items, int done, int skipped, IReadOnlyList<ShardFailure> failed, IReadOnlyList<CocoImage>? images = null)
    {
        var m = new ShardManifest
        {
            Command = _command, ShardIndex = Shard.Index, ShardCount = Shard.Count, Source = Shard.Source,
            Items = items, Done = done, Skipped = skipped, Failed = failed, Images = images ?? Array.Empty<CocoImage>(),
        };
        string path = Parts.ManifestPath(Shard);
        m.Write(path);
        Console.WriteLine($"{_command}: {items.Count} item(s) in this shard: {done} done, {skipped} skipped (part existed), {failed.Count} failed → {path}");
    }
}
