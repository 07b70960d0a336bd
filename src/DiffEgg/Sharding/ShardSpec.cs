using System.Globalization;
using DiffEgg.Common;

namespace DiffEgg.Sharding;

/// <summary>
/// Which part of a dataset this process handles: shard <see cref="Index"/> of <see cref="Count"/> (0-based), taken from the command
/// line or from a scheduler's array-job variables (<see cref="Resolve"/>). Items are assigned by position in a list sorted by a stable
/// key (COCO image id, or file name): item k belongs to shard k mod Count — never a per-process randomised hash.
/// </summary>
public sealed record ShardSpec(int Index, int Count, string Source)
{
    /// <summary>One process for the whole dataset.</summary>
    public static ShardSpec Single { get; } = new(0, 1, "not sharded");

    /// <summary>True when the dataset is split over several processes.</summary>
    public bool IsSharded => Count > 1;

    /// <summary>File name of this shard's manifest inside the parts folder.</summary>
    public string ManifestName => ShardManifest.FileName(Index, Count);

    /// <summary>The items of this shard: positions Index, Index + Count, … of <paramref name="sorted"/>.</summary>
    public IReadOnlyList<T> Select<T>(IReadOnlyList<T> sorted)
    {
        var r = new List<T>();
        for (int i = Index; i < sorted.Count; i += Count) r.Add(sorted[i]);
        return r;
    }

    /// <summary>"shard 2 of 3 (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT)": the 1-based position for people.</summary>
    public override string ToString() => $"shard {Index + 1} of {Count} (index {Index}; from {Source})";

    /// <summary>The scheduler variables read when the command line names no shard.</summary>
    public static readonly string[] EnvironmentVariables =
    {
        "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX", "DIFFEGG_SHARD_COUNT",
        "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE",
    };

    /// <summary>
    /// The shard of this process. <paramref name="index"/>/<paramref name="count"/> (the command line) win over the environment
    /// (<paramref name="env"/>, e.g. <see cref="Environment.GetEnvironmentVariable(string)"/>); <c>count</c> 1 alone means "not sharded".
    /// Environment sources: Slurm (<c>SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN</c>, <c>SLURM_ARRAY_TASK_COUNT</c>), Kubernetes Indexed
    /// Jobs (<c>JOB_COMPLETION_INDEX</c>, <c>DIFFEGG_SHARD_COUNT</c> — Kubernetes has no count variable), AWS Batch
    /// (<c>AWS_BATCH_JOB_ARRAY_INDEX</c>, <c>AWS_BATCH_JOB_ARRAY_SIZE</c>). Two sources that disagree, an index without its count, a
    /// value that is not an integer or an index outside [0, count) are a <see cref="DiffEggException"/> naming the variables.
    /// </summary>
    public static ShardSpec Resolve(int? index, int? count, Func<string, string?> env)
    {
        if (index is not null || count is not null)
        {
            if (count is null) throw new DiffEggException($"--shard-index {index}: give --shard-count too");
            if (count < 1) throw new DiffEggException($"--shard-count {count}: must be at least 1");
            if (index is null)
            {
                if (count == 1) return Single with { Source = "--shard-count 1" };
                throw new DiffEggException($"--shard-count {count}: give --shard-index too (0 to {count - 1})");
            }
            if (index < 0 || index >= count) throw new DiffEggException($"--shard-index {index}: must be in 0..{count - 1} for --shard-count {count}");
            return new ShardSpec(index.Value, count.Value, "--shard-index/--shard-count");
        }

        var found = new List<(int Index, int Count, string Source)>();
        if (Get(env, "SLURM_ARRAY_TASK_ID") is { } slurmId)
        {
            int id = Int("SLURM_ARRAY_TASK_ID", slurmId);
            int min = Int("SLURM_ARRAY_TASK_MIN", Get(env, "SLURM_ARRAY_TASK_MIN") ?? throw Missing("SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_ID"));
            int n = Int("SLURM_ARRAY_TASK_COUNT", Get(env, "SLURM_ARRAY_TASK_COUNT") ?? throw Missing("SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_ID"));
            found.Add((id - min, n, $"Slurm: SLURM_ARRAY_TASK_ID {id} − SLURM_ARRAY_TASK_MIN {min}, SLURM_ARRAY_TASK_COUNT {n}"));
        }
        if (Get(env, "JOB_COMPLETION_INDEX") is { } k8sIndex)
        {
            int i = Int("JOB_COMPLETION_INDEX", k8sIndex);
            int n = Int("DIFFEGG_SHARD_COUNT", Get(env, "DIFFEGG_SHARD_COUNT")
                ?? throw Missing("DIFFEGG_SHARD_COUNT", "JOB_COMPLETION_INDEX", " (Kubernetes has no count variable: set it to the Job's completions)"));
            found.Add((i, n, $"Kubernetes: JOB_COMPLETION_INDEX {i}, DIFFEGG_SHARD_COUNT {n}"));
        }
        else if (Get(env, "DIFFEGG_SHARD_COUNT") is { } lone)
        {
            int n = Int("DIFFEGG_SHARD_COUNT", lone);
            if (found.Count == 0 && n > 1)
                throw new DiffEggException($"DIFFEGG_SHARD_COUNT {n} is set but no shard index is (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX or --shard-index)");
            if (found.Count > 0 && found[0].Count != n)
                throw new DiffEggException($"shard count disagrees: DIFFEGG_SHARD_COUNT {n} but {found[0].Source}");
        }
        if (Get(env, "AWS_BATCH_JOB_ARRAY_INDEX") is { } awsIndex)
        {
            int i = Int("AWS_BATCH_JOB_ARRAY_INDEX", awsIndex);
            int n = Int("AWS_BATCH_JOB_ARRAY_SIZE", Get(env, "AWS_BATCH_JOB_ARRAY_SIZE") ?? throw Missing("AWS_BATCH_JOB_ARRAY_SIZE", "AWS_BATCH_JOB_ARRAY_INDEX"));
            found.Add((i, n, $"AWS Batch: AWS_BATCH_JOB_ARRAY_INDEX {i}, AWS_BATCH_JOB_ARRAY_SIZE {n}"));
        }
        if (found.Count == 0) return Single;
        for (int j = 1; j < found.Count; j++)
            if (found[j].Index != found[0].Index || found[j].Count != found[0].Count)
                throw new DiffEggException($"two schedulers disagree on this shard: {found[0].Source} but {found[j].Source}; set --shard-index and --shard-count to choose");
        var (idx, cnt, src) = found[0];
        if (cnt < 1) throw new DiffEggException($"{src}: the shard count must be at least 1");
        if (idx < 0 || idx >= cnt) throw new DiffEggException($"{src}: index {idx} is outside 0..{cnt - 1} (an array must be contiguous, e.g. --array=0-{cnt - 1})");
        return new ShardSpec(idx, cnt, src);
    }

    static string? Get(Func<string, string?> env, string name) => env(name) is { } v && v.Trim().Length > 0 ? v.Trim() : null;

    static int Int(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new DiffEggException($"{name}={value}: not an integer");

    static DiffEggException Missing(string name, string because, string why = "") => new($"{because} is set but {name} is not{why}");
}
