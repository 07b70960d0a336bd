using System.Numerics;
using System.Runtime.InteropServices;
using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Refinement;

/// <summary>
/// Sparse path affinity and its random-walk transition matrix (Alg 4 lines 4-5, after IRN): for each offset o=(dy,dx) with
/// dy²+dx² ≤ r², a(i, i+o) = 1 − max edge value on the straight path from i to i+o (endpoints included, sampled at every
/// step of the longer axis), A = a^β, self-pair affinity 1, T = D⁻¹A (rows sum to 1). Stored as a [K, H, W] tensor
/// <see cref="Transition"/> with T[k, y, x] = T((y,x), (y,x)+Offsets[k]); never a dense (HW)² matrix.
/// </summary>
public sealed class PathAffinity : IDisposable
{
    public int Radius { get; }
    public int Height { get; }
    public int Width { get; }
    /// <summary>Offsets (dy, dx); Offsets[0] = (0, 0) is the self pair; then each offset is followed by its negation.</summary>
    public IReadOnlyList<(int Dy, int Dx)> Offsets { get; }
    /// <summary>T as [K, H, W]: T[k,y,x] = D⁻¹A between pixel (y,x) and (y,x)+Offsets[k] (0 where that pixel is outside the image).</summary>
    public Tensor Transition { get; }

    PathAffinity(int radius, int h, int w, IReadOnlyList<(int, int)> offsets, Tensor transition)
    {
        Radius = radius; Height = h; Width = w; Offsets = offsets; Transition = transition;
    }

    /// <summary>The half-disk of offsets (dy &gt; 0, or dy = 0 and dx &gt; 0) with dy²+dx² ≤ r²; the full set is these, their negations and (0,0).</summary>
    public static List<(int Dy, int Dx)> HalfDiskOffsets(int radius)
    {
        var list = new List<(int, int)>();
        for (int dy = 0; dy <= radius; dy++)
            for (int dx = -radius; dx <= radius; dx++)
                if ((dy > 0 || dx > 0) && dy * dy + dx * dx <= radius * radius) list.Add((dy, dx));
        return list;
    }

    /// <summary>Alg 4 lines 4-5 (IRN path affinity): builds T = D⁻¹A^∘β from an edge map [H,W] in [0,1]. With <paramref name="regions"/> ([H,W] region ids, e.g. semantic classes), pairs whose path crosses a region change get affinity 0.</summary>
    public static PathAffinity Build(Tensor edges, int radius = 5, double beta = 10, Tensor? regions = null)
    {
        if (radius < 1) throw new ArgumentException($"radius must be ≥ 1, got {radius}");
        if (beta <= 0 || !double.IsFinite(beta)) throw new ArgumentException($"beta must be a positive number, got {beta}");
        if (edges.dim() != 2) throw new ArgumentException($"edges must be [H,W], got [{string.Join(",", edges.shape)}]");
        TorchRuntime.EnsureLoaded();
        int h = (int)edges.shape[0], w = (int)edges.shape[1], r = radius;
        var half = HalfDiskOffsets(r);
        var offsets = new List<(int, int)> { (0, 0) };
        foreach (var (dy, dx) in half) { offsets.Add((dy, dx)); offsets.Add((-dy, -dx)); }
        using var scope = NewDisposeScope();
        var e = edges.to_type(ScalarType.Float32);
        // outside the image counts as edge (affinity 0), and as region -1 (never equal to a real region)
        var ep = nn.functional.pad(e.unsqueeze(0), new long[] { r, r, r, r }, PaddingModes.Constant, 1.0).squeeze(0);
        Tensor? rp = regions is null ? null
            : nn.functional.pad(regions.to_type(ScalarType.Float32).unsqueeze(0), new long[] { r, r, r, r }, PaddingModes.Constant, -1.0).squeeze(0);
        var a = new Tensor[offsets.Count];
        a[0] = ones(h, w);
        var one = tensor(1.0f);
        var betaT = tensor((float)beta);
        for (int j = 0; j < half.Count; j++)
        {
            var (dy, dx) = half[j];
            int steps = Math.Max(Math.Abs(dy), Math.Abs(dx));
            Tensor? emax = null, rmax = null, rmin = null;
            for (int s = 0; s <= steps; s++)
            {
                int py = (int)Math.Round(s * dy / (double)steps, MidpointRounding.AwayFromZero);
                int px = (int)Math.Round(s * dx / (double)steps, MidpointRounding.AwayFromZero);
                var ev = ep.narrow(0, r + py, h).narrow(1, r + px, w);
                emax = emax is null ? ev.clone() : emax.maximum(ev);
                if (rp is not null)
                {
                    var rv = rp.narrow(0, r + py, h).narrow(1, r + px, w);
                    rmax = rmax is null ? rv.clone() : rmax.maximum(rv);
                    rmin = rmin is null ? rv.clone() : rmin.minimum(rv);
                }
            }
            // tensor operands only: an implicitly converted Scalar can be finalised by the GC while libtorch still reads it
            // (seen as a c10 "toFloat" failure in a long refinement run), so the constants live in tensors held by the scope
            var aff = (one - emax!).relu().pow(betaT);
            if (rp is not null) aff = aff * rmax!.eq(rmin!).to_type(ScalarType.Float32);
            a[1 + 2 * j] = aff; // a(i, i+o)
            // a(i, i-o) = a(i-o, i): the same pair seen from the other end (symmetric A)
            var padded = nn.functional.pad(aff.unsqueeze(0), new long[] { r, r, r, r }, PaddingModes.Constant, 0.0).squeeze(0);
            a[2 + 2 * j] = padded.narrow(0, r - dy, h).narrow(1, r - dx, w);
        }
        var A = stack(a, 0);
        var T = A / A.sum(0, keepdim: true);
        return new PathAffinity(r, h, w, offsets, T.contiguous().MoveToOuterDisposeScope());
    }

    float[]? _transitionArray;

    /// <summary>The transition re-laid out as [H,K,W] (one output row's K weight rows contiguous; [K,H,W] puts them HW floats apart, which aliases in cache), copied once.</summary>
    internal float[] TransitionArray()
    {
        if (_transitionArray is null)
        {
            using var hkw = Transition.permute(1, 0, 2).contiguous();
            _transitionArray = hkw.data<float>().ToArray();
        }
        return _transitionArray;
    }

    public void Dispose() => Transition.Dispose();
}

/// <summary>Random-walk instance propagation, RIP (Alg 4 lines 4-6): M* = Tᵗ·(M ⊙ (1−E)) applied as shifted multiply-adds, all masks batched.</summary>
public static class Rip
{
    /// <summary>Alg 4 line 6: M* = Tᵗ·(M ⊙ (1−E)) for masks [N,H,W] (values in [0,1]) and edges [H,W].</summary>
    public static Tensor Run(PathAffinity affinity, Tensor masks, Tensor edges, int steps, float tolerance = 0, IReadOnlyList<(int Y0, int Y1, int X0, int X1)>? windows = null)
    {
        using var scope = NewDisposeScope();
        var seeds = masks * (tensor(1.0f) - edges).unsqueeze(0); // tensor operand, not an implicit Scalar (see PathAffinity.Build)
        return Propagate(affinity, seeds, steps, tolerance, windows).MoveToOuterDisposeScope();
    }

    /// <summary>Alg 4 line 6 without the edge gating: applies M ← T·M, (T·M)(i) = Σ_j T(i,j)·M(j), <paramref name="steps"/> times to [N,H,W] (cost O(N·HW·K·t)).</summary>
    /// <remarks>
    /// The t sparse products run as SIMD loops over spans (the torch version, one shifted multiply-add per offset and step, moves
    /// 4 full [N,H,W] arrays through memory per offset and step): for each output row and SIMD-wide x chunk, the K products
    /// T[k,y,x]·M[y+dy,x+dx] accumulate in a register, reading M from a zero-padded double buffer; rows run in parallel.
    /// With <paramref name="tolerance"/> &gt; 0 a map stops early once, over <see cref="ConvergenceCheckEvery"/> steps, no value
    /// moved by more than tolerance × its maximum (further steps would change it by less than the threshold can see).
    /// </remarks>
    /// <param name="windows">Optional per-map window (Y0, Y1, X0, X1), end-exclusive: the map is only computed there and is 0 outside
    /// (an absorbing border). Callers pass a box around everything the seed can reach through non-edge pixels, plus the radius.</param>
    public static Tensor Propagate(PathAffinity affinity, Tensor seeds, int steps, float tolerance = 0, IReadOnlyList<(int Y0, int Y1, int X0, int X1)>? windows = null)
    {
        if (steps < 0) throw new ArgumentException($"steps must be ≥ 0, got {steps}");
        if (!(tolerance >= 0)) throw new ArgumentException($"tolerance must be ≥ 0, got {tolerance}");
        if (seeds.dim() != 3 || seeds.shape[1] != affinity.Height || seeds.shape[2] != affinity.Width)
            throw new ArgumentException($"seeds must be [N,{affinity.Height},{affinity.Width}], got [{string.Join(",", seeds.shape)}]");
        int n = (int)seeds.shape[0], h = affinity.Height, w = affinity.Width, r = affinity.Radius;
        int pw = w + 2 * r, ph = h + 2 * r, plane = ph * pw, hw = h * w, K = affinity.Offsets.Count;
        float[] T = affinity.TransitionArray();
        float[] src;
        using (var c = seeds.to_type(ScalarType.Float32).contiguous()) src = c.data<float>().ToArray();
        var cur = new float[n * plane];
        var next = new float[n * plane];
        for (int s = 0; s < n; s++)
            for (int y = 0; y < h; y++)
                Array.Copy(src, s * hw + y * w, cur, s * plane + (y + r) * pw + r, w);
        var rel = new int[K];
        for (int k = 0; k < K; k++) rel[k] = affinity.Offsets[k].Dy * pw + affinity.Offsets[k].Dx;
        if (windows is not null && windows.Count != n) throw new ArgumentException($"{windows.Count} windows for {n} maps");
        var win = new (int Y0, int Y1, int X0, int X1)[n];
        for (int s = 0; s < n; s++)
        {
            var wnd = windows?[s] ?? (0, h, 0, w);
            win[s] = (Math.Clamp(wnd.Y0, 0, h), Math.Clamp(wnd.Y1, 0, h), Math.Clamp(wnd.X0, 0, w), Math.Clamp(wnd.X1, 0, w));
            if (windows is not null)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        if (y < win[s].Y0 || y >= win[s].Y1 || x < win[s].X0 || x >= win[s].X1) cur[s * plane + (y + r) * pw + r + x] = 0;
        }
        var active = Enumerable.Repeat(true, n).ToArray();
        var snapshot = tolerance > 0 ? (float[])cur.Clone() : null;
        int rowsPerBlock = Math.Max(1, 2048 / Math.Max(1, w));
        int blocksPerSeed = (h + rowsPerBlock - 1) / rowsPerBlock;
        var work = new List<int>(n * blocksPerSeed);
        for (int t = 0; t < steps; t++)
        {
            work.Clear();
            for (int s = 0; s < n; s++)
                if (active[s])
                    for (int b = 0; b < blocksPerSeed; b++)
                        if (b * rowsPerBlock < win[s].Y1 && (b + 1) * rowsPerBlock > win[s].Y0) work.Add(s * blocksPerSeed + b);
            if (work.Count == 0) break;
            var from = cur; var to = next;
            Parallel.For(0, work.Count, i =>
            {
                int s = work[i] / blocksPerSeed, y0 = work[i] % blocksPerSeed * rowsPerBlock, y1 = Math.Min(h, y0 + rowsPerBlock);
                var (wy0, wy1, wx0, wx1) = win[s];
                for (int y = Math.Max(y0, wy0); y < Math.Min(y1, wy1); y++) StepRow(T, rel, from, to, s * plane + (y + r) * pw + r, y * K * w, wx0, wx1, w, K);
            });
            (cur, next) = (next, cur);
            if (snapshot is not null && (t + 1) % ConvergenceCheckEvery == 0)
            {
                for (int s = 0; s < n; s++)
                {
                    if (!active[s]) continue;
                    var a = new ReadOnlySpan<float>(cur, s * plane, plane);
                    var b = new Span<float>(snapshot, s * plane, plane);
                    float mx = 0, diff = 0;
                    for (int i = 0; i < plane; i++)
                    {
                        mx = Math.Max(mx, a[i]);
                        diff = Math.Max(diff, Math.Abs(a[i] - b[i]));
                    }
                    if (diff <= tolerance * mx)
                    {
                        active[s] = false;
                        a.CopyTo(new Span<float>(next, s * plane, plane)); // both buffers hold the final map
                    }
                    else a.CopyTo(b);
                }
            }
        }
        var result = new float[n * hw];
        for (int s = 0; s < n; s++)
            for (int y = 0; y < h; y++)
                Array.Copy(cur, s * plane + (y + r) * pw + r, result, s * hw + y * w, w);
        return tensor(result, new long[] { n, h, w });
    }

    /// <summary>With a tolerance, convergence is checked every this many steps.</summary>
    public const int ConvergenceCheckEvery = 16;

    static void StepRow(float[] T, int[] rel, float[] from, float[] to, int outBase, int tBase, int x0, int x1, int w, int K)
    {
        int V = Vector<float>.Count;
        ref float t0 = ref MemoryMarshal.GetArrayDataReference(T);
        ref float f0 = ref MemoryMarshal.GetArrayDataReference(from);
        int x = x0;
        // bounds: T index < H·K·W and from index within the padded plane (offsets never leave the r-wide border)
        for (; x + V <= x1; x += V)
        {
            var acc = Vector<float>.Zero;
            for (int k = 0; k < K; k++)
                acc = Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref t0, (nuint)(tBase + k * w + x)), Vector.LoadUnsafe(ref f0, (nuint)(outBase + rel[k] + x)), acc);
            acc.CopyTo(to, outBase + x);
        }
        for (; x < x1; x++)
        {
            float a = 0;
            for (int k = 0; k < K; k++) a += T[tBase + k * w + x] * from[outBase + rel[k] + x];
            to[outBase + x] = a;
        }
    }

    /// <summary>Alg 4 line 6 (thresholding step): divides each map of [N,H,W] by its own maximum (maps whose maximum is 0 stay 0).</summary>
    public static Tensor NormalizeToMax(Tensor maps)
    {
        using var scope = NewDisposeScope();
        using Scalar tiny = 1e-30f; // kept alive by `using` (see PathAffinity.Build)
        var mx = maps.flatten(1).amax(new long[] { 1 }).clamp_min(tiny).view(-1, 1, 1);
        return (maps / mx).MoveToOuterDisposeScope();
    }
}
