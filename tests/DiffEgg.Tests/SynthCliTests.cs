using DiffEgg.Tests.Cli;
using DiffEgg.Cli;

namespace DiffEgg.Tests;

[Collection("Cli")]
public sealed class SynthCliTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-synthcli-", "d");
    string _tmp => _temp.Path;

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void SynthThenBenchEdgesRuns()
    {
        Assert.Equal(0, DiffEggApp.Run(new[] { "synth", "--count", "3", "--split", "test", "--seed", "5", "--out", _tmp }));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(_tmp, "images")).Length);
        Assert.True(File.Exists(Path.Combine(_tmp, "instances.json")) && File.Exists(Path.Combine(_tmp, "panoptic.json")) && File.Exists(Path.Combine(_tmp, "hard_pairs.json")));
        Assert.Equal(0, DiffEggApp.Run(new[] { "bench-edges", "--data", _tmp, "--baseline", "sobel", "--blur", "1.5", "--edge-size", "32" }));
    }

    [Fact]
    public void BadArgumentsFailWithoutStackTrace()
    {
        CliRun.Fails(2, new[] { "synth", "--count", "3", "--split", "val", "--out", _tmp }, new[] { "--split" });
        CliRun.Fails(2, new[] { "synth", "--count", "3" }, new[] { "--out" });
        CliRun.Fails(1, new[] { "bench-edges", "--data", Path.Combine(_tmp, "missing") }, new[] { Path.Combine(_tmp, "missing") });
    }
}
