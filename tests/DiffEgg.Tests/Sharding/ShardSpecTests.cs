using DiffEgg.Common;
using DiffEgg.Sharding;

namespace DiffEgg.Tests.Sharding;

public class ShardSpecTests
{
    static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void SchedulerVariablesGiveTheShardAndSayWhere()
    {
        var slurm = ShardSpec.Resolve(null, null, Env(("SLURM_ARRAY_TASK_ID", "12"), ("SLURM_ARRAY_TASK_MIN", "10"), ("SLURM_ARRAY_TASK_COUNT", "4")));
        Assert.Equal((2, 4), (slurm.Index, slurm.Count));
        Assert.StartsWith("Slurm", slurm.Source);
        var k8s = ShardSpec.Resolve(null, null, Env(("JOB_COMPLETION_INDEX", "0"), ("DIFFEGG_SHARD_COUNT", "3")));
        Assert.Equal((0, 3), (k8s.Index, k8s.Count));
        Assert.StartsWith("Kubernetes", k8s.Source);
        var aws = ShardSpec.Resolve(null, null, Env(("AWS_BATCH_JOB_ARRAY_INDEX", "5"), ("AWS_BATCH_JOB_ARRAY_SIZE", "6")));
        Assert.Equal((5, 6), (aws.Index, aws.Count));
        Assert.StartsWith("AWS Batch", aws.Source);
        Assert.Same(ShardSpec.Single, ShardSpec.Resolve(null, null, Env()));
        // two sources that agree are fine
        var both = ShardSpec.Resolve(null, null, Env(("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "2"), ("DIFFEGG_SHARD_COUNT", "2")));
        Assert.Equal((1, 2), (both.Index, both.Count));
    }

    [Fact]
    public void TheCommandLineWinsOverTheScheduler()
    {
        var env = Env(("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "4"));
        var s = ShardSpec.Resolve(1, 2, env);
        Assert.Equal((1, 2), (s.Index, s.Count));
        Assert.False(ShardSpec.Resolve(null, 1, env).IsSharded);   // --shard-count 1 inside an array job: one process, all images
    }

    [Theory]
    [InlineData("SLURM_ARRAY_TASK_ID=3,SLURM_ARRAY_TASK_MIN=0,SLURM_ARRAY_TASK_COUNT=3", "index 3 is outside 0..2")]
    [InlineData("SLURM_ARRAY_TASK_ID=1,SLURM_ARRAY_TASK_MIN=0", "SLURM_ARRAY_TASK_COUNT is not")]
    [InlineData("JOB_COMPLETION_INDEX=2", "DIFFEGG_SHARD_COUNT is not")]
    [InlineData("AWS_BATCH_JOB_ARRAY_INDEX=x,AWS_BATCH_JOB_ARRAY_SIZE=3", "AWS_BATCH_JOB_ARRAY_INDEX=x: not an integer")]
    [InlineData("SLURM_ARRAY_TASK_ID=1,SLURM_ARRAY_TASK_MIN=0,SLURM_ARRAY_TASK_COUNT=3,JOB_COMPLETION_INDEX=1,DIFFEGG_SHARD_COUNT=4", "disagree")]
    [InlineData("SLURM_ARRAY_TASK_ID=1,SLURM_ARRAY_TASK_MIN=0,SLURM_ARRAY_TASK_COUNT=3,DIFFEGG_SHARD_COUNT=4", "DIFFEGG_SHARD_COUNT 4 but Slurm")]
    [InlineData("DIFFEGG_SHARD_COUNT=4", "no shard index")]
    public void InconsistentSchedulerValuesAreOneClearError(string vars, string expected)
    {
        var env = vars.Split(',').Select(v => v.Split('=')).Select(p => (p[0], p[1])).ToArray();
        var e = Assert.Throws<DiffEggException>(() => ShardSpec.Resolve(null, null, Env(env)));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData(2, null, "--shard-index 2: give --shard-count too")]
    [InlineData(null, 3, "--shard-count 3: give --shard-index too")]
    [InlineData(3, 3, "--shard-index 3: must be in 0..2")]
    [InlineData(0, 0, "--shard-count 0: must be at least 1")]
    public void BadCommandLineShardsNameTheOption(int? index, int? count, string expected)
    {
        var e = Assert.Throws<DiffEggException>(() => ShardSpec.Resolve(index, count, Env()));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ItemsGoByPositionModuloTheCountAndEveryItemOnce()
    {
        var items = Enumerable.Range(0, 11).Select(i => $"img{i:00}").ToList();
        var shards = Enumerable.Range(0, 3).Select(i => new ShardSpec(i, 3, "test").Select(items)).ToList();
        Assert.Equal(new[] { "img00", "img03", "img06", "img09" }, shards[0]);
        Assert.Equal(new[] { "img02", "img05", "img08" }, shards[2]);
        Assert.Equal(items, shards.SelectMany(s => s).Order(StringComparer.Ordinal));
        Assert.Equal(items, ShardSpec.Single.Select(items));
    }
}
