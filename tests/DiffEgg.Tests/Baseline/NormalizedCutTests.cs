using DiffEgg.Common;
using DiffEgg.Baseline;
using TorchSharp;

namespace DiffEgg.Tests.Baseline;

public class NormalizedCutTests
{
    /// <summary>Features on an h×w grid: each cell gets the one-hot feature of its region label (plus a small deterministic jitter).</summary>
    static float[] OneHot(int[] labels, int regions)
    {
        var f = new float[labels.Length * regions];
        for (int i = 0; i < labels.Length; i++)
        {
            f[i * regions + labels[i]] = 1f;
            f[i * regions + (labels[i] + 1) % regions] += 0.05f * ((i * 7) % 5) / 5f;
        }
        return f;
    }

    static int[] Labels(int h, int w, Func<int, int, int> label) => Enumerable.Range(0, h * w).Select(i => label(i / w, i % w)).ToArray();

    [Fact]
    public void TheSecondEigenvectorSeparatesTwoWeaklyLinkedBlocks()
    {
        // 10 nodes: 0..3 and 4..9 fully linked inside (1), 0.01 across
        var a = new double[100];
        for (int i = 0; i < 10; i++) for (int j = 0; j < 10; j++) a[i * 10 + j] = (i < 4) == (j < 4) ? 1 : 0.01;
        using var t = torch.tensor(a, new long[] { 10, 10 });
        var (v, lambda) = NormalizedCut.SecondEigenvector(t);
        Assert.True(lambda > 0 && lambda < 0.1, $"λ₂ {lambda}");
        Assert.All(Enumerable.Range(0, 4), i => Assert.True(Math.Sign(v[i]) == Math.Sign(v[0])));
        Assert.All(Enumerable.Range(4, 6), i => Assert.True(Math.Sign(v[i]) == -Math.Sign(v[0])));
        // vᵀDv = 1 and the largest entry is positive
        double vdv = Enumerable.Range(0, 10).Sum(i => v[i] * v[i] * Enumerable.Range(0, 10).Sum(j => a[i * 10 + j]));
        Assert.Equal(1.0, vdv, 9);
        Assert.True(v.Max() >= -v.Min());
        // the cut between the blocks is cheap, a cut through a block is not
        Assert.True(NormalizedCut.Ncut(t, Enumerable.Range(0, 10).Select(i => i < 4).ToArray()) < 0.1);
        Assert.True(NormalizedCut.Ncut(t, Enumerable.Range(0, 10).Select(i => i < 2).ToArray()) > 0.5);
    }

    [Fact]
    public void MaskCutFindsOneObjectPerCutAndZeroesWhatItFound()
    {
        // 12×12 background with two separate 3×3 objects of the same kind: the first cut keeps the seed's component only, the second
        // finds the other object (the first one's features are zeroed)
        int h = 12, w = 12;
        var lab = Labels(h, w, (y, x) => (y is >= 2 and <= 4 && x is >= 2 and <= 4) || (y is >= 7 and <= 9 && x is >= 7 and <= 9) ? 1 : 0);
        var masks = NormalizedCut.MaskCut(OneHot(lab, 2), 2, h, w, new MaskCutOptions { Tau = 0.5, Cuts = 2 });
        Assert.Equal(2, masks.Count);
        var a = Labels(h, w, (y, x) => y is >= 2 and <= 4 && x is >= 2 and <= 4 ? 1 : 0).Select(v => v == 1).ToArray();
        var b = Labels(h, w, (y, x) => y is >= 7 and <= 9 && x is >= 7 and <= 9 ? 1 : 0).Select(v => v == 1).ToArray();
        Assert.True(masks[0].Mask.SequenceEqual(a) || masks[0].Mask.SequenceEqual(b));
        Assert.True(masks[1].Mask.SequenceEqual(masks[0].Mask.SequenceEqual(a) ? b : a));
        // score = 1 − Ncut: the first cut leaves the second object (the same features) on the other side, so it is a poor cut (≈ 0.5)
        Assert.All(masks, m => Assert.InRange(m.Score, 0.3, 1.0));
    }

    [Fact]
    public void MaskCutFlipsAForegroundThatHoldsThreeCorners()
    {
        // the large region touches all four corners; the 4×4 block is the object whichever sign the eigen-solver returns
        int h = 10, w = 10;
        var lab = Labels(h, w, (y, x) => y is >= 3 and <= 6 && x is >= 3 and <= 6 ? 1 : 0);
        var m = Assert.Single(NormalizedCut.MaskCut(OneHot(lab, 2), 2, h, w, new MaskCutOptions { Tau = 0.5, Cuts = 1 }));
        Assert.Equal(lab.Select(v => v == 1), m.Mask);
    }

    [Fact]
    public void MaskCutDropsARepeatedOrTinyMask()
    {
        // one object only: after it is found and zeroed, the later cuts find nothing new (IoU > 0.5 with the previous or ≤ 1 % of the
        // grid): one mask for three cuts — the fixed-N weakness shows as empty cuts, not as invented objects
        int h = 12, w = 12;
        var lab = Labels(h, w, (y, x) => y is >= 3 and <= 8 && x is >= 3 and <= 8 ? 1 : 0);
        var masks = NormalizedCut.MaskCut(OneHot(lab, 2), 2, h, w, new MaskCutOptions { Tau = 0.5, Cuts = 3 });
        Assert.Equal(lab.Select(v => v == 1), masks[0].Mask);
        Assert.All(masks.Skip(1), m => Assert.False(m.Mask.Zip(masks[0].Mask).Any(p => p.First && p.Second)));   // later masks never reuse pixels
        Assert.True(masks.Count <= 2, $"{masks.Count} masks");
    }

    [Fact]
    public void DiffCutSplitsThreeRegionsAndStopsThere()
    {
        // left third, right two thirds split into top and bottom: three segments, each one mask
        int h = 12, w = 12;
        var lab = Labels(h, w, (y, x) => x < 4 ? 0 : y < 6 ? 1 : 2);
        var masks = NormalizedCut.DiffCut(OneHot(lab, 3), 3, h, w);
        Assert.Equal(3, masks.Count);
        foreach (int r in new[] { 0, 1, 2 })
            Assert.Contains(masks, m => m.Mask.SequenceEqual(lab.Select(v => v == r)));
        // identical features everywhere: the affinity is uniform, no cut is worth it, the whole grid is one segment
        var one = NormalizedCut.DiffCut(Enumerable.Repeat(new[] { 0.6f, 0.8f, 0f }, h * w).SelectMany(x => x).ToArray(), 3, h, w);
        Assert.True(Assert.Single(one).Mask.All(x => x));
    }

    [Fact]
    public void TheIncrementalThresholdSearchEqualsNcutAtEveryThreshold()
    {
        // random symmetric graph of 40 nodes and a random vector: the incremental search finds the same minimum as evaluating Ncut
        // of every candidate bipartition directly
        var rng = new Random(3);
        int n = 40;
        var a = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rng.NextDouble();
        var v = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        var (best, t) = NormalizedCut.BestThresholdCut(a, v, 100);
        double brute = double.PositiveInfinity;
        for (int c = 1; c < 100; c++)
        {
            double th = v.Min() + (v.Max() - v.Min()) * c / 100;
            var part = v.Select(x => x > th).ToArray();
            if (part.All(x => x) || !part.Any(x => x)) continue;
            brute = Math.Min(brute, NormalizedCut.Ncut(a, part));
        }
        Assert.Equal(brute, best, 10);
        Assert.Equal(best, NormalizedCut.Ncut(a, v.Select(x => x > t).ToArray()), 10);
        using var at = torch.tensor(a, new long[] { n, n });
        Assert.Equal(NormalizedCut.Ncut(a, v.Select(x => x > t).ToArray()), NormalizedCut.Ncut(at, v.Select(x => x > t).ToArray()), 12);
    }

    [Fact]
    public void BadFeaturesAreRefused()
    {
        Assert.Throws<ArgumentException>(() => NormalizedCut.MaskCut(new float[10], 2, 2, 2));
        Assert.Throws<ArgumentException>(() => NormalizedCut.MaskCut(new[] { 1f, float.NaN, 0, 1, 1, 0, 0, 1 }, 2, 2, 2));
        var e = Assert.Throws<InvalidOptionException>(() => NormalizedCut.DiffCut(new float[8], 2, 2, 2, new DiffCutOptions { Alpha = 0 }));   // an option: bad input
        Assert.Equal(nameof(DiffCutOptions.Alpha), e.Option);
    }
}
