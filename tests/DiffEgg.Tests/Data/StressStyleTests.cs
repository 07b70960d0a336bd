using DiffEgg.Tests.Cli;
using DiffEgg.Cli;
using DiffEgg.Data.Stress;
using DiffEgg.Data.Synthetic;
using DiffEgg.Evaluation;

namespace DiffEgg.Tests.Data;

/// <summary>The second scene style (<c>diffegg synth --style stress</c>, <see cref="StressSceneRenderer"/>).</summary>
[Collection("Cli")]
public sealed class StressStyleTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-stress-style-", "d");
    string _tmp => _temp.Path;

    public void Dispose() => _temp.Dispose();

    static readonly ThingTexture[] StressKinds = { ThingTexture.Rings, ThingTexture.Shaded, ThingTexture.Marble, ThingTexture.Grain };

    static Dictionary<string, byte[]> ReadTree(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    [Fact]
    public void SameSeedGivesIdenticalFilesAndSeedsAndSplitsDiffer()
    {
        string a = Path.Combine(_tmp, "a"), b = Path.Combine(_tmp, "b"), c = Path.Combine(_tmp, "c"), d = Path.Combine(_tmp, "d");
        Assert.Equal(0, DiffEggApp.Run(new[] { "synth", "--style", "stress", "--count", "3", "--split", "test", "--seed", "0", "--out", a }));
        Assert.Equal(0, DiffEggApp.Run(new[] { "synth", "--style", "stress", "--count", "3", "--split", "test", "--seed", "0", "--out", b }));
        Assert.Equal(0, DiffEggApp.Run(new[] { "synth", "--style", "stress", "--count", "3", "--split", "test", "--seed", "1", "--out", c }));
        Assert.Equal(0, DiffEggApp.Run(new[] { "synth", "--count", "3", "--split", "test", "--seed", "0", "--out", d }));
        var ta = ReadTree(a); var tb = ReadTree(b); var tc = ReadTree(c); var td = ReadTree(d);
        Assert.Equal(3 * 3 + 3, ta.Count); // images, semantic, panoptic PNGs + instances, panoptic, hard_pairs JSON: the default style's layout
        Assert.Equal(ta.Keys.OrderBy(k => k), td.Keys.OrderBy(k => k));
        foreach (var (k, v) in ta) Assert.True(v.AsSpan().SequenceEqual(tb[k]), $"{k} differs between two runs with the same seed");
        for (int i = 0; i < 3; i++)
        {
            string img = Path.Combine("images", $"test_{i:D6}.png");
            Assert.False(ta[img].AsSpan().SequenceEqual(tc[img]), $"{img}: seeds 0 and 1 give the same scene");
            Assert.False(ta[img].AsSpan().SequenceEqual(td[img]), $"{img}: the stress style equals the default style");
        }
        // scene i does not depend on --start/--count, and train differs from test
        var s2 = StressSceneRenderer.Generate(0, SyntheticSplit.Test, 2, 64);
        var e = Path.Combine(_tmp, "e");
        Assert.Equal(0, DiffEggApp.Run(new[] { "synth", "--style", "stress", "--count", "1", "--start", "2", "--split", "test", "--seed", "0", "--out", e }));
        Assert.True(ReadTree(e)[Path.Combine("images", "test_000002.png")].AsSpan().SequenceEqual(ta[Path.Combine("images", "test_000002.png")]));
        Assert.False(s2.Image.Pixels.AsSpan().SequenceEqual(StressSceneRenderer.Generate(0, SyntheticSplit.Train, 2, 64).Image.Pixels));
        // bench-edges reads it, with every object as a thing for the gap measure
        var items = EdgeBenchmark.Load(a);
        Assert.Equal(3, items.Count);
        Assert.All(items, it => Assert.True(it.Things!.Count >= 2 && it.Things.All(t => t is >= 1 and < Scene.StuffSegmentBase)));
    }

    [Fact]
    public void ScenesHoldTouchingObjectsWithTheNewTexturesAndHardPairsOfSimilarColour()
    {
        int withHard = 0;
        const int n = 30;
        for (int i = 0; i < n; i++)
        {
            var s = StressSceneRenderer.Generate(0, SyntheticSplit.Test, i, 64);
            Assert.Equal(64 * 64, s.SegmentMap.Length);
            Assert.InRange(s.Instances.Count, 2, 6);
            Assert.All(s.Instances, x => Assert.Contains(x.Texture, StressKinds));
            Assert.All(s.Instances, x => Assert.Equal(s.SegmentMap.Count(v => v == x.SegmentId), x.Area));
            Assert.All(s.SegmentMap, v => Assert.True(v == Scene.StuffSegmentBase + SyntheticCategories.StuffId(StuffKind.Smooth) || s.Instances.Any(x => x.SegmentId == v)));
            if (s.HardPairs.Count > 0) withHard++;
            foreach (var p in s.HardPairs)
            {
                var a = s.Instances.Single(x => x.SegmentId == p.SegmentIdA);
                var b = s.Instances.Single(x => x.SegmentId == p.SegmentIdB);
                Assert.NotEqual(a.Texture, b.Texture);
                Assert.True(ColorLab.DeltaE76(a.BaseColor, b.BaseColor) < 10);
                Assert.True(p.ContactLength >= 3);
            }
        }
        Assert.True(withHard >= 0.4 * n, $"only {withHard}/{n} stress scenes hold a hard pair");
    }

    [Fact]
    public void BadStyleOptionsAreRefused()
    {
        CliRun.Fails(2, new[] { "synth", "--style", "bogus", "--count", "1", "--out", _tmp }, new[] { "--style" });
        CliRun.Fails(2, new[] { "synth", "--style", "stress", "--size", "32", "--count", "1", "--out", _tmp }, new[] { "--size" });
        CliRun.Fails(2, new[] { "synth", "--style", "stress", "--antialias", "--count", "1", "--out", _tmp }, new[] { "--antialias" });
        Assert.False(Directory.Exists(_tmp));
        Assert.Throws<ArgumentException>(() => StressSceneRenderer.Generate(0, SyntheticSplit.Test, 0, 40));
    }
}
