namespace DiffEgg.Refinement;

/// <summary>Result of connected-component labelling: <see cref="Labels"/> holds 0 for background / dropped pixels and 1..Count for components.</summary>
public sealed class ComponentLabels
{
    public int Width { get; }
    public int Height { get; }
    public int[] Labels { get; }
    public int Count { get; }
    /// <summary>Areas[c] = pixel count of component c (index 0 = background, unused).</summary>
    public int[] Areas { get; }

    internal ComponentLabels(int width, int height, int[] labels, int count, int[] areas)
    {
        Width = width; Height = height; Labels = labels; Count = count; Areas = areas;
    }
}

/// <summary>Connected-component labelling (Alg 4, line 1: CCL of the non-edge pixels), two-pass with union-find.</summary>
public static class ConnectedComponents
{
    /// <summary>Alg 4 line 1: labels the components of the non-edge pixels (edge value &lt; <paramref name="threshold"/>); components under <paramref name="minArea"/> pixels become background.</summary>
    public static ComponentLabels LabelNonEdge(ReadOnlySpan<float> edges, int width, int height, float threshold = 0.5f, int connectivity = 8, int minArea = 1)
    {
        var fg = new bool[edges.Length];
        for (int i = 0; i < fg.Length; i++) fg[i] = edges[i] < threshold;
        return Label(fg, width, height, connectivity, minArea);
    }

    /// <summary>Alg 4 line 1 (CCL): labels the 4- or 8-connected components of the true pixels; components smaller than <paramref name="minArea"/> are dropped (label 0).</summary>
    public static ComponentLabels Label(ReadOnlySpan<bool> foreground, int width, int height, int connectivity = 8, int minArea = 1)
    {
        if (connectivity != 4 && connectivity != 8) throw new ArgumentException($"connectivity must be 4 or 8, got {connectivity}");
        if (foreground.Length != width * height) throw new ArgumentException($"mask has {foreground.Length} pixels, expected {width}x{height}");
        var labels = new int[width * height];
        // provisional labels; parent[l] for union-find (label 0 unused)
        var parent = new List<int> { 0 };
        for (int y = 0; y < height; y++)
        {
            int row = y * width;
            for (int x = 0; x < width; x++)
            {
                int i = row + x;
                if (!foreground[i]) continue;
                int l = 0;
                // already-visited neighbours: W, N (4-conn) and NW, NE (8-conn)
                if (x > 0 && labels[i - 1] != 0) l = Join(parent, l, labels[i - 1]);
                if (y > 0)
                {
                    int up = i - width;
                    if (labels[up] != 0) l = Join(parent, l, labels[up]);
                    if (connectivity == 8)
                    {
                        if (x > 0 && labels[up - 1] != 0) l = Join(parent, l, labels[up - 1]);
                        if (x + 1 < width && labels[up + 1] != 0) l = Join(parent, l, labels[up + 1]);
                    }
                }
                if (l == 0)
                {
                    l = parent.Count;
                    parent.Add(l);
                }
                labels[i] = l;
            }
        }
        // resolve roots, count areas per root
        var rootArea = new int[parent.Count];
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] == 0) continue;
            int r = Find(parent, labels[i]);
            labels[i] = r;
            rootArea[r]++;
        }
        // compact numbering in raster order of first appearance, dropping small components
        var map = new int[parent.Count];
        var areas = new List<int> { 0 };
        for (int i = 0; i < labels.Length; i++)
        {
            int r = labels[i];
            if (r == 0) continue;
            if (map[r] == 0)
            {
                if (rootArea[r] < minArea) { map[r] = -1; }
                else { map[r] = areas.Count; areas.Add(rootArea[r]); }
            }
            labels[i] = map[r] > 0 ? map[r] : 0;
        }
        return new ComponentLabels(width, height, labels, areas.Count - 1, areas.ToArray());
    }

    static int Join(List<int> parent, int a, int b)
    {
        if (a == 0) return Find(parent, b);
        int ra = Find(parent, a), rb = Find(parent, b);
        if (ra == rb) return ra;
        if (ra < rb) { parent[rb] = ra; return ra; }
        parent[ra] = rb;
        return rb;
    }

    static int Find(List<int> parent, int a)
    {
        int r = a;
        while (parent[r] != r) r = parent[r];
        while (parent[a] != r) { int next = parent[a]; parent[a] = r; a = next; }
        return r;
    }
}
