using DiffEgg.Cli;

namespace DiffEgg.Tests;

[Collection("Cli")]
public sealed class SynthCliTests : IDisposable
{
    readonly string _tmp = Path.Combine(Path.GetTempPath(), "diffegg-synthcli-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose() { try { Directory.Delete(_tmp, true); } catch { } }

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
        Assert.Equal(2, DiffEggApp.Run(new[] { "synth", "--count", "3", "--split", "val", "--out", _tmp }));
        Assert.Equal(2, DiffEggApp.Run(new[] { "synth", "--count", "3" }));
        Assert.Equal(1, DiffEggApp.Run(new[] { "bench-edges", "--data", Path.Combine(_tmp, "missing") }));
    }
}
