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
            var aff = (1.0f - emax!).clamp_min(0).pow(beta);
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

    public void Dispose() => Transition.Dispose();
}

/// <summary>Random-walk instance propagation, RIP (Alg 4 lines 4-6): M* = Tᵗ·(M ⊙ (1−E)) applied as shifted multiply-adds, all masks batched.</summary>
public static class Rip
{
    /// <summary>Alg 4 line 6: M* = Tᵗ·(M ⊙ (1−E)) for masks [N,H,W] (values in [0,1]) and edges [H,W].</summary>
    public static Tensor Run(PathAffinity affinity, Tensor masks, Tensor edges, int steps)
    {
        using var scope = NewDisposeScope();
        var seeds = masks * (1.0f - edges).unsqueeze(0);
        return Propagate(affinity, seeds, steps).MoveToOuterDisposeScope();
    }

    /// <summary>Alg 4 line 6 without the edge gating: applies M ← T·M, (T·M)(i) = Σ_j T(i,j)·M(j), <paramref name="steps"/> times to [N,H,W] (cost O(N·HW·K·t)).</summary>
    public static Tensor Propagate(PathAffinity affinity, Tensor seeds, int steps)
    {
        if (steps < 0) throw new ArgumentException($"steps must be ≥ 0, got {steps}");
        if (seeds.dim() != 3 || seeds.shape[1] != affinity.Height || seeds.shape[2] != affinity.Width)
            throw new ArgumentException($"seeds must be [N,{affinity.Height},{affinity.Width}], got [{string.Join(",", seeds.shape)}]");
        using var scope = NewDisposeScope();
        int n = (int)seeds.shape[0], h = affinity.Height, w = affinity.Width, r = affinity.Radius;
        // padded buffer: the zero border is never read with non-zero weight (T is 0 towards outside pixels)
        var buf = zeros(n, h + 2 * r, w + 2 * r);
        var inner = buf.narrow(1, r, h).narrow(2, r, w);
        inner.copy_(seeds.to_type(ScalarType.Float32));
        var offs = affinity.Offsets;
        var views = new Tensor[offs.Count];
        var weights = new Tensor[offs.Count];
        for (int k = 0; k < offs.Count; k++)
        {
            views[k] = buf.narrow(1, r + offs[k].Dy, h).narrow(2, r + offs[k].Dx, w);
            weights[k] = affinity.Transition[k].unsqueeze(0);
        }
        var acc = zeros(n, h, w);
        using var one = 1.0f.ToScalar();
        for (int t = 0; t < steps; t++)
        {
            using (NewDisposeScope())
            {
                acc.zero_();
                for (int k = 0; k < views.Length; k++) acc.addcmul_(views[k], weights[k], one);
                inner.copy_(acc);
            }
        }
        return inner.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Alg 4 line 6 (thresholding step): divides each map of [N,H,W] by its own maximum (maps whose maximum is 0 stay 0).</summary>
    public static Tensor NormalizeToMax(Tensor maps)
    {
        using var scope = NewDisposeScope();
        var mx = maps.flatten(1).amax(new long[] { 1 }).clamp_min(1e-30f).view(-1, 1, 1);
        return (maps / mx).MoveToOuterDisposeScope();
    }
}
