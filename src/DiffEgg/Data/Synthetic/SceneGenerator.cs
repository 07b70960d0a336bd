using DiffEgg.Data;

namespace DiffEgg.Data.Synthetic;

/// <summary>Which split a synthetic scene belongs to. Train and test draw from disjoint scene indices (see <see cref="SceneGenerator.SceneSeed"/>).</summary>
public enum SyntheticSplit { Train, Test }

/// <summary>Options of the synthetic scene generator.</summary>
public sealed record SceneOptions
{
    /// <summary>Width = height in pixels. Lengths (shape sizes, texture periods) scale with Size/64.</summary>
    public int Size { get; init; } = 64;
    public int MinObjects { get; init; } = 2;
    public int MaxObjects { get; init; } = 6;
    /// <summary>Probability that a scene is built around a designed hard pair.</summary>
    public double HardPairProbability { get; init; } = 0.6;
    /// <summary>Minimum visible area of an instance as a fraction of the image; smaller (or fully hidden) instances are dropped.</summary>
    public double MinAreaFraction { get; init; } = 0.008;
    /// <summary>Minimum number of 4-neighbour pixel contacts for two instances to count as touching in a hard pair.</summary>
    public int MinContact { get; init; } = 3;
    /// <summary>Hard pairs need base-colour CIE76 ΔE below this.</summary>
    public double HardDeltaE { get; init; } = 10;
    /// <summary>4×4 supersampling of the image colours. Ground truth is always taken at pixel centres.</summary>
    public bool Antialias { get; init; }
    /// <summary>Per-pixel, per-channel uniform noise amplitude (8-bit units, integer ±).</summary>
    public int SensorNoise { get; init; } = 2;

    public void Validate()
    {
        if (Size < 16 || Size > 4096) throw new ArgumentException($"scene size {Size} must be in 16..4096");
        if (MinObjects < 2 || MaxObjects < MinObjects || MaxObjects > 32) throw new ArgumentException($"object count range {MinObjects}..{MaxObjects} must satisfy 2 <= min <= max <= 32");
        if (HardPairProbability < 0 || HardPairProbability > 1) throw new ArgumentException($"hard-pair probability {HardPairProbability} must be in [0, 1]");
        if (SensorNoise < 0 || SensorNoise > 50) throw new ArgumentException($"sensor noise {SensorNoise} must be in 0..50");
    }
}

/// <summary>
/// Renders synthetic touching-objects scenes: 2–6 textured shapes (4 thing categories by shape) on 2–3 textured
/// background regions (3 stuff categories) split by smooth random boundaries, with pixel-exact ground truth and
/// designed "hard pairs" (touching objects, base-colour ΔE76 &lt; 10, different textures). Deterministic per seed.
/// </summary>
public sealed class SceneGenerator
{
    /// <summary>Scene indices per split must stay below this, so train (base 0) and test (base 1,000,000) never overlap.</summary>
    public const int SplitStride = 1_000_000;

    readonly SceneOptions _o;
    readonly double _k;
    readonly int _n;

    public SceneGenerator(SceneOptions? options = null)
    {
        _o = options ?? new SceneOptions();
        _o.Validate();
        _n = _o.Size;
        _k = _n / 64.0;
    }

    public SceneOptions Options => _o;

    /// <summary>Global scene number of a split index: train = index, test = 1,000,000 + index.</summary>
    public static long SceneNumber(SyntheticSplit split, int index)
    {
        if (index < 0 || index >= SplitStride) throw new ArgumentOutOfRangeException(nameof(index), $"scene index {index} must be in 0..{SplitStride - 1}");
        return (split == SyntheticSplit.Test ? SplitStride : 0) + (long)index;
    }

    /// <summary>Seed of a scene: SplitMix64 of (dataset seed, global scene number). Same (seed, split, index) → same scene.</summary>
    public static ulong SceneSeed(long datasetSeed, SyntheticSplit split, int index)
    {
        ulong s = (ulong)datasetSeed * 0xD1B54A32D192ED03UL ^ (ulong)SceneNumber(split, index);
        return Xoshiro256.SplitMix64(ref s);
    }

    /// <summary>Generates the scene (seed, split, index).</summary>
    public Scene Generate(long datasetSeed, SyntheticSplit split, int index) => Generate(SceneSeed(datasetSeed, split, index));

    sealed class Obj
    {
        public required Shape Shape;
        public required TextureSpec Texture;
        public required Rgb Color;
    }

    /// <summary>Generates one scene from a scene seed.</summary>
    public Scene Generate(ulong sceneSeed)
    {
        var rng = new Xoshiro256(sceneSeed);
        const int attempts = 20;
        for (int attempt = 0; ; attempt++)
        {
            bool last = attempt == attempts - 1;
            var (stuff, seeds, warpX, warpY, warp) = MakeBackground(rng);
            Func<double, double, int> regionAt = (x, y) =>
            {
                double wx = x + warp * warpX.Sample(x, y), wy = y + warp * warpY.Sample(x, y);
                int best = 0; double bd = double.MaxValue;
                for (int i = 0; i < seeds.Length; i++)
                {
                    double dx = wx - seeds[i].X, dy = wy - seeds[i].Y, d = dx * dx + dy * dy;
                    if (d < bd) { bd = d; best = i; }
                }
                return best;
            };
            bool wantHard = rng.Chance(_o.HardPairProbability);
            int count = rng.NextInt(_o.MinObjects, _o.MaxObjects);
            var objs = new List<Obj>();
            if (wantHard)
            {
                var pair = MakeHardPair(rng);
                if (pair == null) { if (!last) continue; }
                else { objs.Add(pair.Value.A); objs.Add(pair.Value.B); }
            }
            while (objs.Count < count)
            {
                var o = RandomObject(rng, rng.Range(0.1, 0.9) * _n, rng.Range(0.1, 0.9) * _n, null, null);
                objs.Insert(rng.NextInt(objs.Count + 1), o);
            }
            int[] labels = RasteriseWithDrops(objs);
            if (objs.Count < 2 && !last) continue;
            var hard = FindHardPairs(objs, labels);
            if (wantHard && hard.Count == 0 && !last) continue;
            return Build(sceneSeed, rng, objs, labels, stuff, regionAt, hard, wantHard);
        }
    }

    (StuffTexture[] stuff, (double X, double Y)[] seeds, ValueNoise wx, ValueNoise wy, double warp) MakeBackground(Xoshiro256 rng)
    {
        int regions = rng.Chance(0.6) ? 2 : 3;
        var kinds = new List<StuffKind> { StuffKind.Smooth, StuffKind.Grain, StuffKind.Hatch };
        var stuff = new StuffTexture[regions];
        for (int i = 0; i < regions; i++)
        {
            int j = rng.NextInt(kinds.Count);
            stuff[i] = new StuffTexture(kinds[j], rng, _k);
            kinds.RemoveAt(j);
        }
        var wx = new ValueNoise(rng.NextULong(), 14 * _k);
        var wy = new ValueNoise(rng.NextULong(), 14 * _k);
        double warp = 7 * _k;
        // Seeds until every region covers at least 10% of the image (checked at pixel centres).
        var seeds = new (double X, double Y)[regions];
        for (int tries = 0; ; tries++)
        {
            for (int i = 0; i < regions; i++) seeds[i] = (rng.Range(0, _n), rng.Range(0, _n));
            var area = new int[regions];
            for (int y = 0; y < _n; y++)
                for (int x = 0; x < _n; x++)
                {
                    double px = x + 0.5, py = y + 0.5;
                    double qx = px + warp * wx.Sample(px, py), qy = py + warp * wy.Sample(px, py);
                    int best = 0; double bd = double.MaxValue;
                    for (int i = 0; i < regions; i++)
                    {
                        double dx = qx - seeds[i].X, dy = qy - seeds[i].Y, d = dx * dx + dy * dy;
                        if (d < bd) { bd = d; best = i; }
                    }
                    area[best]++;
                }
            if (area.Min() >= 0.1 * _n * _n || tries >= 50) break;
        }
        return (stuff, seeds, wx, wy, warp);
    }

    Rgb RandomColor(Xoshiro256 rng) => new((byte)rng.NextInt(55, 200), (byte)rng.NextInt(55, 200), (byte)rng.NextInt(55, 200));

    Obj RandomObject(Xoshiro256 rng, double cx, double cy, ThingTexture? notTexture, Rgb? color)
    {
        var shape = Shape.Random((ShapeKind)rng.NextInt(4), cx, cy, rng, _k);
        ThingTexture tex;
        do tex = (ThingTexture)rng.NextInt(4); while (notTexture == tex);
        return new Obj { Shape = shape, Texture = TextureSpec.Random(tex, rng, _k), Color = color ?? RandomColor(rng) };
    }

    /// <summary>A colour at CIE76 ΔE in [1.5, 9.5) from <paramref name="c"/>, found by a random step in Lab.</summary>
    static Rgb NearColor(Xoshiro256 rng, Rgb c)
    {
        var lab = ColorLab.ToLab(c.R, c.G, c.B);
        for (int t = 0; t < 64; t++)
        {
            double target = rng.Range(2, 9);
            double dx, dy, dz, r2;
            do { dx = rng.Range(-1, 1); dy = rng.Range(-1, 1); dz = rng.Range(-1, 1); r2 = dx * dx + dy * dy + dz * dz; } while (r2 > 1 || r2 < 1e-4);
            double r = Math.Sqrt(r2);
            var (R, G, B) = ColorLab.FromLab(lab.L + target * dx / r, lab.A + target * dy / r, lab.B + target * dz / r);
            if (R < 40 || R > 215 || G < 40 || G > 215 || B < 40 || B > 215) continue;
            var n = new Rgb((byte)Math.Round(R), (byte)Math.Round(G), (byte)Math.Round(B));
            double de = ColorLab.DeltaE76(c, n);
            if (de >= 1.5 && de < 9.5) return n;
        }
        return new Rgb((byte)(c.R + 2), c.G, (byte)(c.B - 2)); // base colours lie in 55..200, so this stays in range; ΔE ≈ 2
    }

    /// <summary>Two objects that touch: B is moved towards A until their pixel masks overlap, then a little further, and drawn above A.</summary>
    (Obj A, Obj B)? MakeHardPair(Xoshiro256 rng)
    {
        var a = RandomObject(rng, rng.Range(0.3, 0.7) * _n, rng.Range(0.3, 0.7) * _n, null, null);
        var b = RandomObject(rng, 0, 0, a.Texture.Kind, NearColor(rng, a.Color));
        bool[] ma = Mask(a.Shape);
        for (int tries = 0; tries < 8; tries++)
        {
            var (dc, ds) = rng.UnitVector();
            double extra = rng.Range(1.5, 4) * _k;
            double dist = a.Shape.Extent + b.Shape.Extent + 1;
            for (; dist > 0; dist -= 0.5)
            {
                b.Shape.Cx = a.Shape.Cx + dc * dist; b.Shape.Cy = a.Shape.Cy + ds * dist;
                if (Overlaps(ma, b.Shape)) break;
            }
            dist = Math.Max(0, dist - extra);
            double cx = a.Shape.Cx + dc * dist, cy = a.Shape.Cy + ds * dist;
            if (cx < 0.05 * _n || cx > 0.95 * _n || cy < 0.05 * _n || cy > 0.95 * _n) continue;
            b.Shape.Cx = cx; b.Shape.Cy = cy;
            return (a, b);
        }
        return null;
    }

    bool[] Mask(Shape s)
    {
        var m = new bool[_n * _n];
        for (int y = 0; y < _n; y++)
            for (int x = 0; x < _n; x++)
                m[y * _n + x] = s.Contains(x + 0.5, y + 0.5);
        return m;
    }

    bool Overlaps(bool[] mask, Shape s)
    {
        for (int y = 0; y < _n; y++)
            for (int x = 0; x < _n; x++)
                if (mask[y * _n + x] && s.Contains(x + 0.5, y + 0.5)) return true;
        return false;
    }

    /// <summary>Object index (top-most containing object) per pixel centre, −1 for background.</summary>
    int[] Rasterise(List<Obj> objs)
    {
        var labels = new int[_n * _n];
        for (int y = 0; y < _n; y++)
            for (int x = 0; x < _n; x++)
                labels[y * _n + x] = TopObject(objs, x + 0.5, y + 0.5);
        return labels;
    }

    static int TopObject(List<Obj> objs, double x, double y)
    {
        for (int i = objs.Count - 1; i >= 0; i--)
            if (objs[i].Shape.Contains(x, y)) return i;
        return -1;
    }

    /// <summary>Rasterises, drops objects whose visible area is below the minimum, and repeats until stable.</summary>
    int[] RasteriseWithDrops(List<Obj> objs)
    {
        int minArea = Math.Max(4, (int)Math.Round(_o.MinAreaFraction * _n * _n));
        while (true)
        {
            int[] labels = Rasterise(objs);
            var area = new int[objs.Count];
            foreach (int l in labels) if (l >= 0) area[l]++;
            bool dropped = false;
            for (int i = objs.Count - 1; i >= 0; i--)
                if (area[i] < minArea) { objs.RemoveAt(i); dropped = true; }
            if (!dropped) return labels;
        }
    }

    /// <summary>All pairs of objects with ≥ MinContact 4-neighbour contacts, base ΔE76 below the threshold and different textures.</summary>
    List<(int A, int B, double DeltaE, int Contact)> FindHardPairs(List<Obj> objs, int[] labels)
    {
        int m = objs.Count;
        var contact = new int[m, m];
        for (int y = 0; y < _n; y++)
            for (int x = 0; x < _n; x++)
            {
                int l = labels[y * _n + x];
                if (l < 0) continue;
                if (x + 1 < _n) { int r = labels[y * _n + x + 1]; if (r >= 0 && r != l) { contact[Math.Min(l, r), Math.Max(l, r)]++; } }
                if (y + 1 < _n) { int d = labels[(y + 1) * _n + x]; if (d >= 0 && d != l) { contact[Math.Min(l, d), Math.Max(l, d)]++; } }
            }
        var list = new List<(int, int, double, int)>();
        for (int i = 0; i < m; i++)
            for (int j = i + 1; j < m; j++)
            {
                if (contact[i, j] < _o.MinContact || objs[i].Texture.Kind == objs[j].Texture.Kind) continue;
                double de = ColorLab.DeltaE76(objs[i].Color, objs[j].Color);
                if (de < _o.HardDeltaE) list.Add((i, j, de, contact[i, j]));
            }
        return list;
    }

    Scene Build(ulong seed, Xoshiro256 rng, List<Obj> objs, int[] labels, StuffTexture[] stuff, Func<double, double, int> regionAt,
        List<(int A, int B, double DeltaE, int Contact)> hard, bool designed)
    {
        int n = _n;
        var segMap = new int[n * n];
        var classMap = new byte[n * n];
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                int i = y * n + x, l = labels[i];
                if (l >= 0)
                {
                    segMap[i] = l + 1;
                    classMap[i] = (byte)SyntheticCategories.ThingId(objs[l].Shape.Kind);
                }
                else
                {
                    int cat = SyntheticCategories.StuffId(stuff[regionAt(x + 0.5, y + 0.5)].Kind);
                    segMap[i] = Scene.StuffSegmentBase + cat;
                    classMap[i] = (byte)cat;
                }
            }

        // Image: colour at sample points (pixel centre, or 4×4 subsamples) plus hashed sensor noise.
        var img = new RgbImage(n, n);
        ulong noiseSeed = rng.NextULong();
        int ss = _o.Antialias ? 4 : 1;
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                double r = 0, g = 0, b = 0;
                for (int sy = 0; sy < ss; sy++)
                    for (int sx = 0; sx < ss; sx++)
                    {
                        double px = x + (sx + 0.5) / ss, py = y + (sy + 0.5) / ss;
                        int l = ss == 1 ? labels[y * n + x] : TopObject(objs, px, py);
                        Rgb c; double off;
                        if (l >= 0)
                        {
                            var o = objs[l];
                            var (u, v) = o.Shape.ToLocal(px, py);
                            c = o.Color; off = o.Texture.Amplitude * o.Texture.Modulation(u, v);
                        }
                        else
                        {
                            var st = stuff[regionAt(px, py)];
                            c = st.BaseColor; off = st.Offset(px, py);
                        }
                        r += c.R + off; g += c.G + off; b += c.B + off;
                    }
                int p = 3 * (y * n + x);
                double inv = 1.0 / (ss * ss);
                img.Pixels[p] = Clamp(r * inv + Noise(noiseSeed, p));
                img.Pixels[p + 1] = Clamp(g * inv + Noise(noiseSeed, p + 1));
                img.Pixels[p + 2] = Clamp(b * inv + Noise(noiseSeed, p + 2));
            }

        var instances = new List<SceneInstance>();
        for (int l = 0; l < objs.Count; l++)
        {
            var (area, box) = AreaBox(segMap, l + 1);
            instances.Add(new SceneInstance(l + 1, SyntheticCategories.ThingId(objs[l].Shape.Kind), objs[l].Shape.Kind, objs[l].Texture.Kind, objs[l].Color, area, box));
        }
        var stuffSegs = new List<SceneStuff>();
        foreach (var kind in new[] { StuffKind.Smooth, StuffKind.Grain, StuffKind.Hatch })
        {
            int cat = SyntheticCategories.StuffId(kind), id = Scene.StuffSegmentBase + cat;
            var (area, box) = AreaBox(segMap, id);
            if (area > 0) stuffSegs.Add(new SceneStuff(id, cat, kind, area, box));
        }
        var pairs = hard.Select(h => new HardPair(h.A + 1, h.B + 1, h.DeltaE, objs[h.A].Texture.Kind, objs[h.B].Texture.Kind, h.Contact)).ToList();
        return new Scene
        {
            Width = n, Height = n, Seed = seed, Image = img, SegmentMap = segMap, ClassMap = classMap,
            Instances = instances, Stuff = stuffSegs, HardPairs = pairs, HardPairDesigned = designed,
        };
    }

    int Noise(ulong seed, int i)
    {
        if (_o.SensorNoise == 0) return 0;
        ulong h = Xoshiro256.Mix(seed ^ (ulong)i * 0x9E3779B97F4A7C15UL);
        return (int)(h % (ulong)(2 * _o.SensorNoise + 1)) - _o.SensorNoise;
    }

    static byte Clamp(double v) => (byte)Math.Clamp((int)Math.Round(v), 0, 255);

    (int Area, PixelBox Box) AreaBox(int[] map, int id)
    {
        int area = 0, x0 = int.MaxValue, y0 = int.MaxValue, x1 = -1, y1 = -1;
        for (int y = 0; y < _n; y++)
            for (int x = 0; x < _n; x++)
                if (map[y * _n + x] == id)
                {
                    area++;
                    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
                }
        return area == 0 ? (0, new PixelBox(0, 0, 0, 0)) : (area, new PixelBox(x0, y0, x1 - x0 + 1, y1 - y0 + 1));
    }
}
