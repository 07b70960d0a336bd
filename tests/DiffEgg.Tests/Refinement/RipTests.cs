using DiffEgg.Common;
using DiffEgg.Refinement;
using TorchSharp;
using static TorchSharp.torch;
using static DiffEgg.Tests.Refinement.Scenes;

namespace DiffEgg.Tests.Refinement;

public class RipTests
{
    [Fact]
    public void TransitionRowsSumToOneAndNeverPointOutside()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var gen = new Random(7);
        const int h = 17, w = 23;
        var ev = Enumerable.Range(0, h * w).Select(_ => (float)gen.NextDouble()).ToArray();
        using var aff = PathAffinity.Build(tensor(ev, new long[] { h, w }), 3, 4);
        Assert.Equal(1 + 2 * PathAffinity.HalfDiskOffsets(3).Count, aff.Offsets.Count);
        Assert.Equal(29, aff.Offsets.Count); // lattice points with dy²+dx² ≤ 9
        var rowSum = aff.Transition.sum(0L);
        Assert.True((rowSum - 1f).abs().max().item<float>() < 1e-5f);
        Assert.True(aff.Transition.min().item<float>() >= 0);
        // T toward a pixel outside the image is 0
        var T = aff.Transition.data<float>().ToArray();
        for (int k = 0; k < aff.Offsets.Count; k++)
        {
            var (dy, dx) = aff.Offsets[k];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    if (y + dy < 0 || y + dy >= h || x + dx < 0 || x + dx >= w)
                        Assert.Equal(0f, T[(k * h + y) * w + x]);
        }
    }

    [Fact]
    public void AffinityIsSymmetricAndBlockedByEdgesOnThePath()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        const int h = 9, w = 9;
        var e = new float[h * w];
        VLine(e, w, 4, 0, 8, 0.5f);
        using var aff = PathAffinity.Build(tensor(e, new long[] { h, w }), 2, 2);
        var T = aff.Transition;
        var D = 1 / T[0]; // self affinity is 1, so T(i,i) = 1/D(i)
        int kRight = aff.Offsets.ToList().IndexOf((0, 2)), kLeft = aff.Offsets.ToList().IndexOf((0, -2));
        // A(i,j) = D(i)T(i,j) is symmetric: pixel (2,3) → (2,5) and back
        float aij = (D[2, 3] * T[kRight, 2, 3]).item<float>(), aji = (D[2, 5] * T[kLeft, 2, 5]).item<float>();
        Assert.Equal(aij, aji, 5);
        Assert.Equal(0.25f, aij, 5); // path crosses edge 0.5: (1-0.5)^2
        int kOne = aff.Offsets.ToList().IndexOf((0, 1));
        Assert.Equal(1f, (D[2, 1] * T[kOne, 2, 1]).item<float>(), 5); // clean path: affinity 1
    }

    [Fact]
    public void PropagatedValuesStayWithinInputRange()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var gen = new Random(3);
        const int h = 20, w = 20;
        var ev = Enumerable.Range(0, h * w).Select(_ => gen.NextDouble() < 0.2 ? 1f : 0f).ToArray();
        using var aff = PathAffinity.Build(tensor(ev, new long[] { h, w }));
        var seeds = rand(new long[] { 3, h, w }, generator: new Generator(5)) * 0.7f;
        var p = Rip.Propagate(aff, seeds, 40);
        Assert.True(p.min().item<float>() >= 0);
        var inMax = seeds.flatten(1).amax(new long[] { 1 });
        var outMax = p.flatten(1).amax(new long[] { 1 });
        Assert.True((outMax - inMax).max().item<float>() <= 1e-5f);
        // zero steps is the identity
        Assert.True(Rip.Propagate(aff, seeds, 0).allclose(seeds));
    }

    [Fact]
    public void PropagationInsideAClosedEdgeLoopStaysInside()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        const int h = 48, w = 48;
        var e = new float[h * w];
        Ring(e, w, 12, 35, 12, 35, 0.8f); // a soft loop: crossing it costs (1-0.8)^10 ≈ 1e-7
        var inside = Rect(w, h, 13, 34, 13, 34);
        var seed = new float[h * w];
        for (int y = 18; y < 24; y++) for (int x = 18; x < 24; x++) seed[y * w + x] = 1;
        var et = tensor(e, new long[] { h, w });
        using var aff = PathAffinity.Build(et);
        var p = Rip.Run(aff, tensor(seed, new long[] { 1, h, w }), et, 256).data<float>().ToArray();
        double total = p.Sum(v => (double)v), outside = 0, insideMin = double.MaxValue, insideMax = 0;
        for (int i = 0; i < p.Length; i++)
        {
            if (inside[i] == 0) outside += p[i];
            else { insideMin = Math.Min(insideMin, p[i]); insideMax = Math.Max(insideMax, p[i]); }
        }
        Assert.True(outside / total < 1e-3, $"fraction outside {outside / total}");
        // after 256 steps the walk has mixed the interior: every interior pixel is above half the maximum
        Assert.True(insideMin > 0.5 * insideMax, $"interior min {insideMin} max {insideMax}");
    }

    [Fact]
    public void SimdPropagationMatchesAReferenceSum()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var gen = new Random(11);
        const int h = 13, w = 21; // w not a multiple of the SIMD width: exercises the scalar tail
        var ev = Enumerable.Range(0, h * w).Select(_ => gen.NextDouble() < 0.3 ? (float)gen.NextDouble() : 0f).ToArray();
        using var aff = PathAffinity.Build(tensor(ev, new long[] { h, w }), 2, 3);
        var m = Enumerable.Range(0, 2 * h * w).Select(_ => (float)gen.NextDouble()).ToArray();
        var T = aff.Transition.data<float>().ToArray();
        var cur = (float[])m.Clone();
        for (int step = 0; step < 3; step++)
        {
            var nxt = new float[cur.Length];
            for (int s = 0; s < 2; s++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        double a = 0;
                        for (int k = 0; k < aff.Offsets.Count; k++)
                        {
                            int yy = y + aff.Offsets[k].Dy, xx = x + aff.Offsets[k].Dx;
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                            a += T[(k * h + y) * w + x] * cur[(s * h + yy) * w + xx];
                        }
                        nxt[(s * h + y) * w + x] = (float)a;
                    }
            cur = nxt;
        }
        var got = Rip.Propagate(aff, tensor(m, new long[] { 2, h, w }), 3).data<float>().ToArray();
        for (int i = 0; i < got.Length; i++) Assert.Equal(cur[i], got[i], 4);
    }

    [Fact]
    public void EarlyStopAndWindowsKeepTheThresholdedResult()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        const int h = 48, w = 48;
        var e = new float[h * w];
        Ring(e, w, 12, 35, 12, 35, 0.8f);
        var seed = new float[h * w];
        for (int y = 18; y < 24; y++) for (int x = 18; x < 24; x++) seed[y * w + x] = 1;
        var et = tensor(e, new long[] { h, w });
        var st = tensor(seed, new long[] { 1, h, w });
        using var aff = PathAffinity.Build(et);
        var exact = Rip.NormalizeToMax(Rip.Run(aff, st, et, 256));
        var fast = Rip.NormalizeToMax(Rip.Run(aff, st, et, 256, 1e-4f, new[] { (7, 41, 7, 41) }));
        Assert.True((exact - fast).abs().max().item<float>() < 0.01f);
        Assert.Equal(exact.ge(0.5f).data<bool>().ToArray(), fast.ge(0.5f).data<bool>().ToArray());
        // nothing outside the window
        var f = fast.data<float>().ToArray();
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++)
            if (y < 7 || y >= 41 || x < 7 || x >= 41) Assert.Equal(0f, f[y * w + x]);
    }
}
