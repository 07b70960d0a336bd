using DiffEgg.Refinement;

namespace DiffEgg.Demo;

/// <summary>The baseline the edge-based pseudo-labels are compared with: one segment per connected region of each thing class, one segment per stuff class.</summary>
public static class NaivePanoptic
{
    /// <summary>Panoptic segments from a semantic mask without edges: CCL per thing class (touching same-class objects stay one segment), stuff whole.</summary>
    public static PanopticResult Build(byte[] semantic, int width, int height, IReadOnlyDictionary<int, bool> isThing, int connectivity = 8, int ignoreValue = 255)
    {
        if (semantic.Length != width * height) throw new ArgumentException($"semantic mask has {semantic.Length} pixels, expected {width}x{height}");
        var ids = new int[semantic.Length];
        var segs = new List<PseudoSegment>();
        var classes = semantic.Where(v => v != ignoreValue).Distinct().OrderBy(v => v).ToList();
        var fg = new bool[semantic.Length];
        foreach (byte k in classes)
        {
            if (!isThing.TryGetValue(k, out bool thing)) throw new ArgumentException($"semantic value {k} is not a known category id");
            for (int i = 0; i < fg.Length; i++) fg[i] = semantic[i] == k;
            var cc = thing ? ConnectedComponents.Label(fg, width, height, connectivity, 1) : null;
            int count = cc?.Count ?? 1;
            int first = segs.Count + 1;
            var area = new long[count + 1];
            var box = new (int X0, int Y0, int X1, int Y1)[count + 1];
            for (int c = 1; c <= count; c++) box[c] = (int.MaxValue, int.MaxValue, -1, -1);
            for (int i = 0; i < fg.Length; i++)
            {
                if (!fg[i]) continue;
                int c = cc is null ? 1 : cc.Labels[i];
                ids[i] = first + c - 1;
                area[c]++;
                int x = i % width, y = i / width;
                var b = box[c];
                box[c] = (Math.Min(b.X0, x), Math.Min(b.Y0, y), Math.Max(b.X1, x), Math.Max(b.Y1, y));
            }
            for (int c = 1; c <= count; c++)
                segs.Add(new PseudoSegment(first + c - 1, k, area[c], new[] { box[c].X0, box[c].Y0, box[c].X1 - box[c].X0 + 1, box[c].Y1 - box[c].Y0 + 1 }));
        }
        return new PanopticResult(width, height, ids, segs);
    }
}
