using DiffEgg.Common;
namespace DiffEgg.Refinement;

/// <summary>Parameters of refinement with edges (Alg 4). Defaults are the documented ones (docs/method.md).</summary>
public sealed record RefineOptions
{
    /// <summary>RIP affinity radius r in working-resolution pixels.</summary>
    public int Radius { get; init; } = 5;
    /// <summary>RIP affinity exponent β (A = a^β).</summary>
    public double Beta { get; init; } = 10;
    /// <summary>Number t of random-walk steps (M* = Tᵗ M).</summary>
    public int Steps { get; init; } = 256;
    /// <summary>RIP early stop: a map stops once 16 steps change no value by more than this × its maximum (0 = always run all t steps).</summary>
    public float Tolerance { get; init; } = 1e-4f;
    /// <summary>Edge value at or above which a pixel is an edge for CCL (non-edge: value &lt; threshold).</summary>
    public float EdgeThreshold { get; init; } = 0.5f;
    /// <summary>CCL connectivity, 4 or 8.</summary>
    public int Connectivity { get; init; } = 8;
    /// <summary>Minimum component area (working-resolution pixels) for a component to count as "sizeable" (split) or as a seed (panoptic).</summary>
    public int MinArea { get; init; } = 16;
    /// <summary>A mask that covers at least this fraction of each of ≥ 2 sizeable components is split.</summary>
    public float SplitCoverage { get; init; } = 0.5f;
    /// <summary>A component takes part in a split only if it holds at least this fraction of the mask's area (small texture cells do not split a mask).</summary>
    public float SplitMinFraction { get; init; } = 0.15f;
    /// <summary>A refined mask that keeps less than this fraction of its seed is treated as a collapse (the walk was trapped by texture edges); the seed is kept instead (0 = off).</summary>
    public double MinKeep { get; init; } = 0.8;
    /// <summary>Score factor of the original mask kept beside its split parts.</summary>
    public double OriginalScoreFactor { get; init; } = 0.5;
    /// <summary>Threshold on the propagated map divided by its maximum.</summary>
    public float PropagationThreshold { get; init; } = 0.5f;
    /// <summary>Masks of the same category with IoU above this are merged (union, higher score).</summary>
    public double MergeIoU { get; init; } = 0.5;
    /// <summary>Long side of the working resolution (capped further by the edge map's and the image's size).</summary>
    public int MaxSide { get; init; } = 128;
    /// <summary>A refined mask larger than this many times its seed is treated as a leak through an open contour; the seed is kept instead.</summary>
    public double MaxGrowth { get; init; } = 4;
    /// <summary>Morphological closing radius (working pixels, square) applied to each refined mask: bridges the thin edge responses of object texture (0 = off).</summary>
    public int CloseRadius { get; init; } = 1;
    /// <summary>Fill the holes (background pixels not 4-connected to the border) of each refined mask.</summary>
    public bool FillHoles { get; init; } = true;

    /// <summary>Joint competitive propagation: edge regions grow from cores that compete in one RIP and masks vote per region (true), or each mask is propagated alone, Alg 4 read literally (false).</summary>
    public bool Competition { get; init; } = true;
    /// <summary>Gap-tolerant cores: region cores are the maxima of the distance to the edges standing at least this many working pixels above the saddle where they meet a higher one, so regions joined through a gap keep separate cores (0 = the paper's CCL of the non-edge pixels).</summary>
    public int GapTolerance { get; init; } = 2;
    /// <summary>Edge pixels in 8-connected pieces shorter than this (working pixels) are clutter and ignored (0 = keep every edge pixel).</summary>
    public int MinEdgeLength { get; init; } = 8;
    /// <summary>With competition: a region joins a mask when the mask covers at least this fraction of it.</summary>
    public float RegionVote { get; init; } = 0.4f;
    /// <summary>Edge agreement as the arbiter: a refined mask (or a split) replaces the original only if its edge agreement is at least the original's plus <see cref="ArbiterMargin"/>.</summary>
    public bool Arbiter { get; init; } = true;
    /// <summary>Margin of the arbiter (edge-agreement units, 0..1).</summary>
    public double ArbiterMargin { get; init; } = 0.0;
    /// <summary>Re-score every output mask by its edge agreement Q: score × (1 − w + w·Q) with this weight w (0 = keep the input scores).</summary>
    public double RescoreWeight { get; init; } = 0.5;

    /// <summary>Checks every field; throws <see cref="InvalidOptionException"/> naming the field.</summary>
    public void Validate()
    {
        if (Radius < 1 || Radius > 32) throw new InvalidOptionException(nameof(Radius), $"must be in 1..32, got {Radius}");
        if (!(Beta > 0) || !double.IsFinite(Beta)) throw new InvalidOptionException(nameof(Beta), $"must be positive, got {Beta}");
        if (Steps < 0) throw new InvalidOptionException(nameof(Steps), $"must be ≥ 0, got {Steps}");
        if (!(Tolerance >= 0 && Tolerance < 1)) throw new InvalidOptionException(nameof(Tolerance), $"must be in [0,1), got {Tolerance}");
        if (!(EdgeThreshold > 0 && EdgeThreshold <= 1)) throw new InvalidOptionException(nameof(EdgeThreshold), $"must be in (0,1], got {EdgeThreshold}");
        if (Connectivity != 4 && Connectivity != 8) throw new InvalidOptionException(nameof(Connectivity), $"must be 4 or 8, got {Connectivity}");
        if (MinArea < 1) throw new InvalidOptionException(nameof(MinArea), $"must be ≥ 1, got {MinArea}");
        if (!(SplitCoverage > 0 && SplitCoverage <= 1)) throw new InvalidOptionException(nameof(SplitCoverage), $"must be in (0,1], got {SplitCoverage}");
        if (!(PropagationThreshold > 0 && PropagationThreshold < 1)) throw new InvalidOptionException(nameof(PropagationThreshold), $"must be in (0,1), got {PropagationThreshold}");
        if (!(MergeIoU > 0 && MergeIoU <= 1)) throw new InvalidOptionException(nameof(MergeIoU), $"must be in (0,1], got {MergeIoU}");
        if (MaxSide < 8) throw new InvalidOptionException(nameof(MaxSide), $"must be ≥ 8, got {MaxSide}");
        if (!(MaxGrowth >= 1)) throw new InvalidOptionException(nameof(MaxGrowth), $"must be ≥ 1, got {MaxGrowth}");
        if (!(SplitMinFraction >= 0 && SplitMinFraction < 1)) throw new InvalidOptionException(nameof(SplitMinFraction), $"must be in [0,1), got {SplitMinFraction}");
        if (!(MinKeep >= 0 && MinKeep <= 1)) throw new InvalidOptionException(nameof(MinKeep), $"must be in [0,1], got {MinKeep}");
        if (CloseRadius < 0 || CloseRadius > 16) throw new InvalidOptionException(nameof(CloseRadius), $"must be in 0..16, got {CloseRadius}");
        if (GapTolerance < 0 || GapTolerance > 16) throw new InvalidOptionException(nameof(GapTolerance), $"must be in 0..16, got {GapTolerance}");
        if (MinEdgeLength < 0) throw new InvalidOptionException(nameof(MinEdgeLength), $"must be ≥ 0, got {MinEdgeLength}");
        if (!(RegionVote > 0 && RegionVote <= 1)) throw new InvalidOptionException(nameof(RegionVote), $"must be in (0,1], got {RegionVote}");
        if (!(ArbiterMargin >= 0 && ArbiterMargin < 1)) throw new InvalidOptionException(nameof(ArbiterMargin), $"must be in [0,1), got {ArbiterMargin}");
        if (!(RescoreWeight >= 0 && RescoreWeight <= 1)) throw new InvalidOptionException(nameof(RescoreWeight), $"must be in [0,1], got {RescoreWeight}");
    }
}
