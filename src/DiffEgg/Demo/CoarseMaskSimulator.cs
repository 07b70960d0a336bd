using DiffEgg.Common;
using DiffEgg.Data.Synthetic;

namespace DiffEgg.Demo;

/// <summary>How a simulated coarse mask was made from the ground truth.</summary>
public enum SimulatedMaskKind { Intact, Merged, Fragment }

/// <summary>A simulated coarse instance mask (row-major, 1 = inside) and the ground-truth segments it came from.</summary>
public sealed record SimulatedMask(byte[] Pixels, int CategoryId, double Score, SimulatedMaskKind Kind, int[] SourceSegmentIds);

/// <summary>Rates of the coarse-mask simulation (what a weak instance segmenter gets wrong at touching objects).</summary>
public sealed record CoarseSimulationOptions
{
    /// <summary>Probability that a pair of touching instances (both still unmerged) becomes one mask.</summary>
    public double MergeRate { get; init; } = 0.5;
    /// <summary>Probability that an instance not merged is cut along a random line into two masks.</summary>
    public double FragmentRate { get; init; } = 0.3;
    /// <summary>Probability that a pixel on either side of a mask's boundary is flipped (removed inside, added outside).</summary>
    public double BoundaryNoise { get; init; } = 0.15;
    /// <summary>Minimum number of 4-neighbour pixel contacts for two instances to count as touching.</summary>
    public int MinContact { get; init; } = 3;
    /// <summary>Each piece of a fragmented instance has at least this many pixels (otherwise the cut is redrawn, up to 8 times, then skipped).</summary>
    public int MinFragmentArea { get; init; } = 8;

    /// <summary>Checks the rates; throws <see cref="ArgumentException"/> naming the field.</summary>
    public void Validate()
    {
        if (!(MergeRate >= 0 && MergeRate <= 1)) throw new InvalidOptionException(nameof(MergeRate), $"must be in [0,1], got {MergeRate}");
        if (!(FragmentRate >= 0 && FragmentRate <= 1)) throw new InvalidOptionException(nameof(FragmentRate), $"must be in [0,1], got {FragmentRate}");
        if (!(BoundaryNoise >= 0 && BoundaryNoise <= 1)) throw new InvalidOptionException(nameof(BoundaryNoise), $"must be in [0,1], got {BoundaryNoise}");
        if (MinContact < 1) throw new InvalidOptionException(nameof(MinContact), $"must be ≥ 1, got {MinContact}");
        if (MinFragmentArea < 1) throw new InvalidOptionException(nameof(MinFragmentArea), $"must be ≥ 1, got {MinFragmentArea}");
    }
}

/// <summary>Simulated coarse masks of one image with what was done: touching pairs found, pairs merged, instances fragmented.</summary>
public sealed record CoarseSimulation(IReadOnlyList<SimulatedMask> Masks, int TouchingPairs, int Merges, int Fragmented);

/// <summary>
/// Simulates the rough instance masks that DiffEGG's refinement (Alg 4) takes as input, from pixel-exact ground truth:
/// touching instances merged, instances fragmented along a random line, random boundary noise. Deterministic in the seed.
/// </summary>
public static class CoarseMaskSimulator
{
    /// <summary>Simulated coarse masks for the thing instances (segment id, category id) of a segment-id map (input of Alg 4).</summary>
    public static CoarseSimulation Simulate(int[] segmentMap, int width, int height, IReadOnlyList<(int SegmentId, int CategoryId)> instances,
        ulong seed, CoarseSimulationOptions? options = null)
    {
        var o = options ?? new CoarseSimulationOptions();
        o.Validate();
        if (segmentMap.Length != width * height) throw new ArgumentException($"segment map has {segmentMap.Length} pixels, expected {width}x{height}");
        var rng = new Xoshiro256(seed);
        var index = new Dictionary<int, int>();
        for (int k = 0; k < instances.Count; k++) index[instances[k].SegmentId] = k;
        int n = instances.Count;
        var area = new int[n];
        foreach (int s in segmentMap) if (index.TryGetValue(s, out int k)) area[k]++;

        // touching pairs: 4-neighbour contacts between different instances
        var contacts = new Dictionary<(int, int), int>();
        void Contact(int a, int b)
        {
            if (a == b || !index.TryGetValue(a, out int ka) || !index.TryGetValue(b, out int kb)) return;
            var key = ka < kb ? (ka, kb) : (kb, ka);
            contacts[key] = contacts.GetValueOrDefault(key) + 1;
        }
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x;
                if (x + 1 < width) Contact(segmentMap[i], segmentMap[i + 1]);
                if (y + 1 < height) Contact(segmentMap[i], segmentMap[i + width]);
            }
        var pairs = contacts.Where(kv => kv.Value >= o.MinContact).Select(kv => kv.Key).OrderBy(p => p.Item1).ThenBy(p => p.Item2).ToList();

        // merges: each touching pair, in order, with probability MergeRate if neither member is merged yet (one draw per pair)
        var partner = Enumerable.Repeat(-1, n).ToArray();
        int merges = 0;
        foreach (var (a, b) in pairs)
        {
            bool draw = rng.Chance(o.MergeRate);
            if (draw && partner[a] < 0 && partner[b] < 0) { partner[a] = b; partner[b] = a; merges++; }
        }

        var masks = new List<SimulatedMask>();
        int fragmented = 0;
        for (int k = 0; k < n; k++)
        {
            int p = partner[k];
            if (p >= 0 && p < k) continue; // already emitted with its partner
            double score = Math.Round(0.5 + 0.5 * rng.NextDouble(), 3);
            if (p >= 0)
            {
                var m = MaskOf(segmentMap, instances[k].SegmentId, instances[p].SegmentId);
                int cat = area[k] >= area[p] ? instances[k].CategoryId : instances[p].CategoryId;
                masks.Add(new SimulatedMask(Noise(m, width, height, o.BoundaryNoise, rng), cat, score, SimulatedMaskKind.Merged,
                    new[] { instances[k].SegmentId, instances[p].SegmentId }));
                continue;
            }
            var whole = MaskOf(segmentMap, instances[k].SegmentId, -1);
            bool cut = rng.Chance(o.FragmentRate);
            var pieces = cut ? Cut(whole, width, height, o.MinFragmentArea, rng) : null;
            if (pieces is null)
            {
                masks.Add(new SimulatedMask(Noise(whole, width, height, o.BoundaryNoise, rng), instances[k].CategoryId, score, SimulatedMaskKind.Intact,
                    new[] { instances[k].SegmentId }));
                continue;
            }
            fragmented++;
            foreach (var piece in pieces)
            {
                double s = Math.Round(0.5 + 0.5 * rng.NextDouble(), 3);
                masks.Add(new SimulatedMask(Noise(piece, width, height, o.BoundaryNoise, rng), instances[k].CategoryId, s, SimulatedMaskKind.Fragment,
                    new[] { instances[k].SegmentId }));
            }
        }
        return new CoarseSimulation(masks, pairs.Count, merges, fragmented);
    }

    static byte[] MaskOf(int[] map, int a, int b)
    {
        var m = new byte[map.Length];
        for (int i = 0; i < m.Length; i++) if (map[i] == a || map[i] == b) m[i] = 1;
        return m;
    }

    /// <summary>Two pieces of a mask on either side of a random line near its centroid, each ≥ minArea pixels; null when 8 draws fail.</summary>
    static byte[][]? Cut(byte[] m, int w, int h, int minArea, Xoshiro256 rng)
    {
        double cx = 0, cy = 0; int area = 0;
        for (int i = 0; i < m.Length; i++) if (m[i] != 0) { cx += i % w + 0.5; cy += i / w + 0.5; area++; }
        if (area < 2 * minArea) return null;
        cx /= area; cy /= area;
        double spread = 0.3 * Math.Sqrt(area / Math.PI);
        for (int attempt = 0; attempt < 8; attempt++)
        {
            var (c, s) = rng.UnitVector();
            double off = rng.Range(-spread, spread);
            var a = new byte[m.Length]; var b = new byte[m.Length];
            int na = 0, nb = 0;
            for (int i = 0; i < m.Length; i++)
            {
                if (m[i] == 0) continue;
                double d = (i % w + 0.5 - cx) * c + (i / w + 0.5 - cy) * s - off;
                if (d < 0) { a[i] = 1; na++; } else { b[i] = 1; nb++; }
            }
            if (na >= minArea && nb >= minArea) return new[] { a, b };
        }
        return null;
    }

    /// <summary>Flips each pixel on either side of the mask boundary (4-neighbourhood) with probability p; keeps the mask if it would vanish.</summary>
    internal static byte[] Noise(byte[] m, int w, int h, double p, Xoshiro256 rng)
    {
        if (p <= 0) return m;
        var r = (byte[])m.Clone();
        bool any = false;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                byte v = m[i];
                bool boundary = (x > 0 && m[i - 1] != v) || (x + 1 < w && m[i + 1] != v) || (y > 0 && m[i - w] != v) || (y + 1 < h && m[i + w] != v);
                if (boundary && rng.Chance(p)) r[i] = (byte)(1 - v);
                any |= r[i] != 0;
            }
        return any ? r : m;
    }
}
