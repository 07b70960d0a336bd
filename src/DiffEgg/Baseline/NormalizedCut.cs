using DiffEgg.Common;
using System.Runtime.InteropServices;
using DiffEgg.Refinement;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Baseline;

/// <summary>A coarse mask on the feature grid (row-major, h·w) and its score, 1 − the normalized cut that produced it (Shi &amp; Malik).</summary>
public sealed record GridMask(bool[] Mask, double Score);

/// <summary>MaskCut's settings (CutLER, Wang et al. 2023): affinity threshold τ and the number of cuts N.</summary>
public sealed record MaskCutOptions
{
    /// <summary>Cosine affinity above which two patches are joined (1), else 1e-5.</summary>
    public double Tau { get; init; } = 0.15;
    /// <summary>Number of cuts per image (at most N masks).</summary>
    public int Cuts { get; init; } = 3;

    public void Validate()
    {
        if (!(Tau > -1 && Tau < 1)) throw new InvalidOptionException(nameof(Tau), $"must lie in (-1, 1), got {Tau}");
        if (Cuts < 1) throw new InvalidOptionException(nameof(Cuts), $"must be at least 1, got {Cuts}");
    }
}

/// <summary>DiffCut's recursive normalized cut (Couairon et al. 2024): affinity exponent α, stopping threshold on the Ncut value.</summary>
public sealed record DiffCutOptions
{
    /// <summary>Exponent α of the min-max scaled cosine affinity.</summary>
    public double Alpha { get; init; } = 10;
    /// <summary>A segment is split while the best cut's Ncut value is below this.</summary>
    public double Threshold { get; init; } = 0.5;
    /// <summary>Candidate thresholds on the eigenvector tried per cut.</summary>
    public int Candidates { get; init; } = 100;
    /// <summary>Connected components below this fraction of the grid are not masks (MaskCut's 1 % area filter).</summary>
    public double MinAreaFraction { get; init; } = 0.01;

    public void Validate()
    {
        if (!(Alpha > 0)) throw new InvalidOptionException(nameof(Alpha), $"must be positive, got {Alpha}");
        if (!(Threshold > 0)) throw new InvalidOptionException(nameof(Threshold), $"must be positive, got {Threshold}");
        if (Candidates < 2) throw new InvalidOptionException(nameof(Candidates), $"must be at least 2, got {Candidates}");
        if (!(MinAreaFraction >= 0 && MinAreaFraction < 1)) throw new InvalidOptionException(nameof(MinAreaFraction), $"must lie in [0, 1), got {MinAreaFraction}");
    }
}

/// <summary>
/// Graph cuts on patch features <c>F [N, C]</c> of an h × w grid: MaskCut (iterated foreground bipartitions) and DiffCut (recursive
/// 2-way Ncut). Both use the second-smallest generalized eigenvector of (D − A)v = λDv, computed with libtorch's symmetric eigen-solver
/// (<c>linalg.eigh</c>) on D^{-1/2}(D − A)D^{-1/2} in float64; v = D^{-1/2}u.
/// </summary>
public static class NormalizedCut
{
    const double Eps = 1e-5;

    /// <summary>
    /// MaskCut (CutLER's <c>maskcut_forward</c>): for each of N cuts, A = [F̂F̂ᵀ &gt; τ] with zeros set to 1e-5 (F̂ = L2-normalised
    /// rows), bipartition at the mean of v, flip when ≥ 3 of the 4 corners are foreground or the seed argmax|v| is background, keep
    /// the seed's 4-connected component; from the second cut on, a mask with IoU &gt; 0.5 to the previous one or covering ≤ 1 % of the
    /// grid is dropped; the found patches' features are zeroed before the next cut; each mask loses the pixels of earlier masks.
    /// v's sign is fixed so that its entry of largest magnitude is positive (scipy leaves it to LAPACK).
    /// </summary>
    public static IReadOnlyList<GridMask> MaskCut(float[] features, int channels, int height, int width, MaskCutOptions? options = null)
    {
        var o = options ?? new MaskCutOptions();
        o.Validate();
        int n = Check(features, channels, height, width);
        using var scope = NewDisposeScope();
        var f = Normalise(tensor(features, new long[] { n, channels }, ScalarType.Float64));
        var painting = new bool[n];
        bool[]? previous = null;
        var taken = new bool[n];
        var masks = new List<GridMask>();
        for (int i = 0; i < o.Cuts; i++)
        {
            using var step = NewDisposeScope();
            if (i > 0)
            {
                for (int k = 0; k < n; k++) painting[k] |= previous![k];
                f = f * tensor(painting.Select(p => p ? 0.0 : 1.0).ToArray(), new long[] { n, 1 }, ScalarType.Float64);
                f = f.MoveToOuterDisposeScope();
            }
            using var tau = o.Tau.ToScalar();
            using var eps = Eps.ToScalar();
            var a = f.matmul(f.t()).gt(tau).to_type(ScalarType.Float64).clamp_min(eps);
            var (v, _) = SecondEigenvector(a);
            double mean = v.Average();
            var fg = v.Select(x => x > mean).ToArray();
            int seed = ArgMaxAbs(v);
            int corners = (fg[0] ? 1 : 0) + (fg[width - 1] ? 1 : 0) + (fg[(height - 1) * width] ? 1 : 0) + (fg[n - 1] ? 1 : 0);
            if (corners >= 3 || !fg[seed])
            {
                for (int k = 0; k < n; k++) { fg[k] = !fg[k]; v[k] = -v[k]; }
                seed = ArgMax(v);
            }
            else seed = ArgMax(v);
            var mask = ComponentOf(fg, width, height, seed);
            if (i >= 1 && (IoU(previous!, mask) > 0.5 || mask.Count(x => x) <= 0.01 * n)) mask = new bool[n];
            previous = mask;
            double ncut = Ncut(a, mask);
            var own = mask.Select((m, k) => m && !taken[k]).ToArray();
            for (int k = 0; k < n; k++) taken[k] |= mask[k];
            if (own.Any(x => x)) masks.Add(new GridMask(own, Math.Clamp(1 - ncut, 0, 1)));
        }
        return masks;
    }

    /// <summary>
    /// DiffCut's recursive normalized cut: W = ((cos − min) / (max − min))^α over all patch pairs; a segment is split at the threshold
    /// on v (one of <see cref="DiffCutOptions.Candidates"/> evenly spaced between its minimum and maximum) with the smallest Ncut, as
    /// long as that Ncut is below <see cref="DiffCutOptions.Threshold"/>; the final segments' 4-connected components of at least
    /// <see cref="DiffCutOptions.MinAreaFraction"/> of the grid are the masks (the background is a segment like any other).
    /// </summary>
    public static IReadOnlyList<GridMask> DiffCut(float[] features, int channels, int height, int width, DiffCutOptions? options = null)
    {
        var o = options ?? new DiffCutOptions();
        o.Validate();
        int n = Check(features, channels, height, width);
        using var scope = NewDisposeScope();
        var f = Normalise(tensor(features, new long[] { n, channels }, ScalarType.Float64));
        var cos = f.matmul(f.t());
        double lo = cos.min().item<double>(), hi = cos.max().item<double>();
        using var sLo = lo.ToScalar();
        using var sRange = (hi - lo).ToScalar();
        using var sAlpha = o.Alpha.ToScalar();
        var w = hi > lo ? cos.sub(sLo).div(sRange).pow(sAlpha) : ones_like(cos);
        var segments = new List<(int[] Nodes, double Ncut)>();
        Split(w, Enumerable.Range(0, n).ToArray(), 1.0, o, segments);
        var masks = new List<GridMask>();
        foreach (var (nodes, ncut) in segments)
        {
            var inSeg = new bool[n];
            foreach (int k in nodes) inSeg[k] = true;
            var cc = ConnectedComponents.Label(inSeg, width, height, connectivity: 4);
            for (int c = 1; c <= cc.Count; c++)
            {
                if (cc.Areas[c] < Math.Max(1, o.MinAreaFraction * n)) continue;
                masks.Add(new GridMask(cc.Labels.Select(l => l == c).ToArray(), Math.Clamp(1 - ncut, 0, 1)));
            }
        }
        return masks;
    }

    static void Split(Tensor w, int[] nodes, double ncutOfParent, DiffCutOptions o, List<(int[], double)> segments)
    {
        if (nodes.Length < 2) { segments.Add((nodes, ncutOfParent)); return; }
        double[] v;
        double best, bestThreshold;
        using (var scope = NewDisposeScope())
        {
            var idx = tensor(nodes.Select(x => (long)x).ToArray());
            var subT = w.index_select(0, idx).index_select(1, idx).contiguous();
            (v, _) = SecondEigenvector(subT);
            // read the affinity in place (no managed copy: large copies per split raise the GC rate, see SecondEigenvector)
            (best, bestThreshold) = BestThresholdCut(MemoryMarshal.Cast<byte, double>(subT.bytes), v, o.Candidates);
        }
        if (!(best < o.Threshold)) { segments.Add((nodes, ncutOfParent)); return; }
        Split(w, nodes.Where((_, i) => v[i] > bestThreshold).ToArray(), best, o, segments);
        Split(w, nodes.Where((_, i) => !(v[i] > bestThreshold)).ToArray(), best, o, segments);
    }

    /// <summary>
    /// The smallest Ncut over the bipartitions S = {v &gt; t}, t = min + (max − min)·c/candidates (c = 1 … candidates − 1), of the graph
    /// <paramref name="a"/> (n × n, row-major), and its threshold; (+∞, NaN) when no threshold splits. Nodes join S in decreasing v, and
    /// the cut is updated per node (O(n²) in all, managed code).
    /// </summary>
    internal static (double Ncut, double Threshold) BestThresholdCut(ReadOnlySpan<double> a, double[] v, int candidates)
    {
        int n = v.Length;
        var deg = new double[n];
        for (int i = 0; i < n; i++) { double d = 0; for (int j = 0; j < n; j++) d += a[i * n + j]; deg[i] = d; }
        double total = deg.Sum();
        var order = Enumerable.Range(0, n).OrderByDescending(i => v[i]).ToArray();
        double vmin = v.Min(), vmax = v.Max();
        var toS = new double[n];   // Σ_{i∈S} A[i, j]
        double cut = 0, assocS = 0;
        int p = 0;
        double best = double.PositiveInfinity, bestT = double.NaN;
        for (int c = candidates - 1; c >= 1; c--)
        {
            double t = vmin + (vmax - vmin) * c / candidates;
            while (p < n && v[order[p]] > t)
            {
                int k = order[p++];
                cut += deg[k] - a[k * n + k] - 2 * toS[k];
                assocS += deg[k];
                for (int j = 0; j < n; j++) toS[j] += a[k * n + j];
            }
            if (p == 0 || p == n) continue;
            double assocT = total - assocS;
            if (assocS <= 0 || assocT <= 0) continue;
            double nc = cut / assocS + cut / assocT;
            if (nc < best) { best = nc; bestT = t; }
        }
        return (best, bestT);
    }

    /// <summary>
    /// The second-smallest generalized eigenvector v of (D − A)v = λDv for a symmetric non-negative affinity A [n, n] (D = diag of row
    /// sums), normalised to vᵀDv = 1, with its largest-magnitude entry positive; and λ.
    /// </summary>
    public static (double[] Vector, double Lambda) SecondEigenvector(Tensor affinity)
    {
        using var scope = NewDisposeScope();
        var a = affinity.to_type(ScalarType.Float64);
        long n = a.shape[0];
        if (a.dim() != 2 || a.shape[1] != n || n < 2) throw new ArgumentException($"affinity must be a square matrix of side ≥ 2, got [{string.Join(",", a.shape)}]");
        var d = a.sum(1);
        // explicit Scalars held by `using`: an implicit conversion's Scalar can be finalised by the GC while libtorch still reads it
        // (seen as "Expected false to be true" from c10::Scalar::toDouble and "Unknown scalar type" once the GC ran often)
        using var tiny = 1e-12.ToScalar();
        using var half = 0.5.ToScalar();
        var dis = d.clamp_min(tiny).rsqrt();
        var l = eye(n, dtype: ScalarType.Float64) - dis.unsqueeze(1) * a * dis.unsqueeze(0);
        l = (l + l.t()).mul(half);
        var (vals, vecs) = linalg.eigh(l);
        var u = vecs[.., 1];
        var v = (u * dis).data<double>().ToArray();
        int m = ArgMaxAbs(v);
        if (v[m] < 0) for (int i = 0; i < v.Length; i++) v[i] = -v[i];
        return (v, vals[1].item<double>());
    }

    /// <summary>Shi &amp; Malik's Ncut(S, S̄) = cut/assoc(S) + cut/assoc(S̄) for a bipartition of the graph A; 2 when a side is empty.</summary>
    public static double Ncut(Tensor affinity, bool[] part)
    {
        using var scope = NewDisposeScope();
        var a = affinity.to_type(ScalarType.Float64).contiguous();
        return Ncut(MemoryMarshal.Cast<byte, double>(a.bytes), part);
    }

    /// <summary><see cref="Ncut(Tensor, bool[])"/> on a row-major n × n affinity (managed: no tensor temporaries per call).</summary>
    public static double Ncut(ReadOnlySpan<double> a, bool[] part)
    {
        int n = part.Length;
        if (a.Length != (long)n * n) throw new ArgumentException($"affinity has {a.Length} values, expected {n}×{n}");
        double assocS = 0, assocT = 0, cut = 0;
        for (int i = 0; i < n; i++)
        {
            double d = 0, c = 0;
            for (int j = 0; j < n; j++)
            {
                double x = a[i * n + j];
                d += x;
                if (part[i] && !part[j]) c += x;
            }
            if (part[i]) assocS += d; else assocT += d;
            cut += c;
        }
        if (assocS <= 0 || assocT <= 0) return 2;
        return cut / assocS + cut / assocT;
    }

    static int Check(float[] features, int channels, int height, int width)
    {
        if (channels < 1 || height < 2 || width < 2) throw new ArgumentException($"feature grid {height}×{width}×{channels}: need at least 2×2 patches and 1 channel");
        int n = height * width;
        if (features.Length != (long)n * channels) throw new ArgumentException($"features have {features.Length} values, expected {height}×{width}×{channels}");
        if (features.Any(x => !float.IsFinite(x))) throw new ArgumentException("features contain NaN or infinity");
        return n;
    }

    static Tensor Normalise(Tensor f)
    {
        using var tiny = 1e-12.ToScalar();
        return f / f.norm(1, true).clamp_min(tiny);
    }

    static int ArgMaxAbs(double[] v) { int m = 0; for (int i = 1; i < v.Length; i++) if (Math.Abs(v[i]) > Math.Abs(v[m])) m = i; return m; }
    static int ArgMax(double[] v) { int m = 0; for (int i = 1; i < v.Length; i++) if (v[i] > v[m]) m = i; return m; }

    /// <summary>The 4-connected component of <paramref name="fg"/> containing <paramref name="seed"/> (empty when the seed is background).</summary>
    internal static bool[] ComponentOf(bool[] fg, int width, int height, int seed)
    {
        var r = new bool[fg.Length];
        if (!fg[seed]) return r;
        var stack = new Stack<int>();
        stack.Push(seed);
        r[seed] = true;
        while (stack.Count > 0)
        {
            int p = stack.Pop(), y = p / width, x = p % width;
            void Visit(int q) { if (fg[q] && !r[q]) { r[q] = true; stack.Push(q); } }
            if (x > 0) Visit(p - 1);
            if (x + 1 < width) Visit(p + 1);
            if (y > 0) Visit(p - width);
            if (y + 1 < height) Visit(p + width);
        }
        return r;
    }

    static double IoU(bool[] a, bool[] b)
    {
        int i = 0, u = 0;
        for (int k = 0; k < a.Length; k++) { if (a[k] && b[k]) i++; if (a[k] || b[k]) u++; }
        return u == 0 ? 0 : (double)i / u;
    }
}
