using DiffEgg.Data.Synthetic;

namespace DiffEgg.Data.Stress;

/// <summary>
/// A second scene style for edge and refinement benchmarks (<c>diffegg synth --style stress</c>): the object layout of
/// <see cref="StressScenes"/> (3–6 touching wobbly ellipses, later ones occluding earlier ones) rendered to RGB with textures,
/// colours and a background that <c>diffegg synth</c>'s default style never draws — concentric rings, a lit (shaded) body,
/// marbled sine bands, fine grain; a two-colour gradient background with soft bands — so that a model or adapter trained on
/// the default style is measured on scenes it has not seen. Ground truth as in the default style: things = the objects
/// (category "blob"), one stuff segment = the background (category "smooth"); hard pairs = touching objects (≥ 3 contacts)
/// with base-colour CIE76 ΔE &lt; 10 and different textures, one designed per scene with probability 0.6. Deterministic per
/// (dataset seed, split, index).
/// </summary>
public static class StressSceneRenderer
{
    /// <summary>Texture kinds of this style (stored in hard_pairs.json under these names).</summary>
    static readonly ThingTexture[] Kinds = { ThingTexture.Rings, ThingTexture.Shaded, ThingTexture.Marble, ThingTexture.Grain };

    /// <summary>Scene <paramref name="index"/> of <paramref name="split"/> at <paramref name="size"/> × <paramref name="size"/> (≥ 48) pixels.</summary>
    public static Scene Generate(long datasetSeed, SyntheticSplit split, int index, int size, double hardPairProbability = 0.6)
    {
        if (size < 48 || size > 1024) throw new ArgumentException($"stress-style scene size {size} must be in 48..1024");
        if (!(hardPairProbability >= 0 && hardPairProbability <= 1)) throw new ArgumentException($"hard-pair probability {hardPairProbability} must be in [0, 1]");
        ulong seed = SceneGenerator.SceneSeed(datasetSeed, split, index) ^ 0x57E55C0DE5EEDUL;
        var layout = StressScenes.Generate(new StressOptions { Count = 1, MinSide = size, MaxSide = size, Seed = seed, MergeRate = 0, FragmentRate = 0 })[0];
        return Render(layout, new Xoshiro256(Xoshiro256.Mix(seed ^ 0xC01045UL)), seed, hardPairProbability);
    }

    /// <summary>Renders the labels of a stress scene (0 = background, 1..N objects) to an RGB scene with ground truth.</summary>
    public static Scene Render(StressScene layout, Xoshiro256 rng, ulong seed, double hardPairProbability = 0.6)
    {
        int W = layout.Width, H = layout.Height, n = layout.ObjectCount;
        var labels = layout.Labels;
        var contacts = Contacts(labels, W, H, n);

        // colours and textures per object; a designed hard pair gets a near colour and a different texture
        var color = new Rgb[n + 1];
        var tex = new ThingTexture[n + 1];
        for (int k = 1; k <= n; k++) { color[k] = RandomColor(rng); tex[k] = Kinds[rng.NextInt(Kinds.Length)]; }
        var touching = new List<(int A, int B)>();
        for (int a = 1; a <= n; a++) for (int b = a + 1; b <= n; b++) if (contacts[a, b] >= 3) touching.Add((a, b));
        bool designed = touching.Count > 0 && rng.Chance(hardPairProbability);
        if (designed)
        {
            var (a, b) = touching[rng.NextInt(touching.Count)];
            color[b] = NearColor(color[a], rng);
            do tex[b] = Kinds[rng.NextInt(Kinds.Length)]; while (tex[b] == tex[a]);
        }

        // per-object texture parameters
        var cx = new double[n + 1]; var cy = new double[n + 1]; var area = new int[n + 1];
        for (int i = 0; i < labels.Length; i++) { int l = labels[i]; area[l]++; cx[l] += i % W + 0.5; cy[l] += i / W + 0.5; }
        for (int k = 1; k <= n; k++) if (area[k] > 0) { cx[k] /= area[k]; cy[k] /= area[k]; }
        var period = new double[n + 1]; var angle = new double[n + 1]; var phase = new double[n + 1];
        for (int k = 1; k <= n; k++) { period[k] = rng.Range(3.5, 6.5) * W / 64.0; angle[k] = rng.Range(0, 2 * Math.PI); phase[k] = rng.Range(0, 2 * Math.PI); }

        // background: a gradient between two colours along a random direction, with soft low-frequency bands
        Rgb bg0 = RandomColor(rng), bg1 = RandomColor(rng);
        double ga = rng.Range(0, 2 * Math.PI), bandF = rng.Range(0.6, 1.4) * 2 * Math.PI / W, bandA = rng.Range(0.05, 0.12), bandPh = rng.Range(0, 2 * Math.PI);
        ulong noiseKey = rng.NextULong();

        var px = new byte[W * H * 3];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int i = y * W + x, l = labels[i];
                double u = x + 0.5, v = y + 0.5, r, g, b;
                if (l == 0)
                {
                    double t = Math.Clamp(0.5 + ((u - W / 2.0) * Math.Cos(ga) + (v - H / 2.0) * Math.Sin(ga)) / W, 0, 1);
                    double f = 1 + bandA * Math.Sin(bandF * (u * Math.Sin(ga) - v * Math.Cos(ga)) + bandPh);
                    r = f * (bg0.R * (1 - t) + bg1.R * t); g = f * (bg0.G * (1 - t) + bg1.G * t); b = f * (bg0.B * (1 - t) + bg1.B * t);
                }
                else
                {
                    double m = Shade(tex[l], u - cx[l], v - cy[l], period[l], angle[l], phase[l], Math.Sqrt(area[l] / Math.PI), Hash(noiseKey, i));
                    r = color[l].R * m; g = color[l].G * m; b = color[l].B * m;
                }
                int noise = (int)(Hash(noiseKey ^ 0xA5A5UL, i) % 7) - 3;
                px[3 * i] = Clamp(r + noise); px[3 * i + 1] = Clamp(g + noise); px[3 * i + 2] = Clamp(b + noise);
            }

        // ground truth in the layout of the default style: things 1..N, the background one stuff segment
        int stuffCat = SyntheticCategories.StuffId(StuffKind.Smooth), thingCat = SyntheticCategories.ThingId(ShapeKind.Blob);
        var seg = new int[W * H]; var cls = new byte[W * H];
        int bgArea = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] == 0) { seg[i] = Scene.StuffSegmentBase + stuffCat; cls[i] = (byte)stuffCat; bgArea++; }
            else { seg[i] = labels[i]; cls[i] = (byte)thingCat; }
        }
        var instances = new List<SceneInstance>();
        for (int k = 1; k <= n; k++)
            if (area[k] > 0) instances.Add(new SceneInstance(k, thingCat, ShapeKind.Blob, tex[k], color[k], area[k], Box(labels, W, H, k)));
        var stuff = bgArea == 0 ? new List<SceneStuff>()
            : new List<SceneStuff> { new(Scene.StuffSegmentBase + stuffCat, stuffCat, StuffKind.Smooth, bgArea, Box(labels, W, H, 0)) };
        var hard = new List<HardPair>();
        foreach (var (a, b) in touching)
        {
            double de = ColorLab.DeltaE76(color[a], color[b]);
            if (de < 10 && tex[a] != tex[b]) hard.Add(new HardPair(a, b, de, tex[a], tex[b], contacts[a, b]));
        }
        return new Scene
        {
            Width = W, Height = H, Seed = seed, Image = new RgbImage(W, H, px), SegmentMap = seg, ClassMap = cls,
            Instances = instances, Stuff = stuff, HardPairs = hard, HardPairDesigned = designed,
        };
    }

    /// <summary>Brightness factor of a texture at offset (dx, dy) from the object's centroid.</summary>
    static double Shade(ThingTexture kind, double dx, double dy, double period, double angle, double phase, double radius, ulong h)
    {
        switch (kind)
        {
            case ThingTexture.Rings: // concentric rings around the centroid
                return 1 + 0.16 * Math.Sin(2 * Math.PI * Math.Sqrt(dx * dx + dy * dy) / period + phase);
            case ThingTexture.Shaded: // a lit body: bright towards the light direction, dark on the far side
            {
                double s = (dx * Math.Cos(angle) + dy * Math.Sin(angle)) / Math.Max(1, radius);
                return 1.05 + 0.22 * Math.Clamp(s, -1.2, 1.2);
            }
            case ThingTexture.Marble: // bands bent by a second sine
            {
                double p = dx * Math.Cos(angle) + dy * Math.Sin(angle), q = -dx * Math.Sin(angle) + dy * Math.Cos(angle);
                return 1 + 0.15 * Math.Sin(2 * Math.PI * p / (1.6 * period) + 1.8 * Math.Sin(2 * Math.PI * q / (2.5 * period) + phase));
            }
            default: // Grain: fine per-pixel grain
                return 0.9 + 0.2 * (h % 1000) / 1000.0;
        }
    }

    static Rgb RandomColor(Xoshiro256 rng)
    {
        while (true)
        {
            var (r, g, b) = ColorLab.FromLab(rng.Range(35, 85), rng.Range(-55, 55), rng.Range(-55, 55));
            if (r is >= 0 and <= 255 && g is >= 0 and <= 255 && b is >= 0 and <= 255) return new Rgb((byte)Math.Round(r), (byte)Math.Round(g), (byte)Math.Round(b));
        }
    }

    /// <summary>A colour at CIE76 ΔE in [2, 8) from <paramref name="c"/> (a random direction in Lab; retried until in gamut and in range).</summary>
    static Rgb NearColor(Rgb c, Xoshiro256 rng)
    {
        var lab = ColorLab.ToLab(c.R, c.G, c.B);
        for (int attempt = 0; attempt < 200; attempt++)
        {
            double target = rng.Range(2, 8), dx = rng.Range(-1, 1), dy = rng.Range(-1, 1), dz = rng.Range(-1, 1);
            double len = Math.Sqrt(dx * dx + dy * dy + dz * dz);
            if (len < 1e-3) continue;
            var (r, g, b) = ColorLab.FromLab(lab.L + target * dx / len, lab.A + target * dy / len, lab.B + target * dz / len);
            if (r is < 0 or > 255 || g is < 0 or > 255 || b is < 0 or > 255) continue;
            var n = new Rgb((byte)Math.Round(r), (byte)Math.Round(g), (byte)Math.Round(b));
            double de = ColorLab.DeltaE76(c, n);
            if (de >= 1.5 && de < 9.5) return n;
        }
        return c;
    }

    static int[,] Contacts(int[] labels, int W, int H, int n)
    {
        var c = new int[n + 1, n + 1];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int a = labels[y * W + x];
                if (a == 0) continue;
                if (x + 1 < W && labels[y * W + x + 1] is var r && r != 0 && r != a) { c[Math.Min(a, r), Math.Max(a, r)]++; }
                if (y + 1 < H && labels[(y + 1) * W + x] is var d && d != 0 && d != a) { c[Math.Min(a, d), Math.Max(a, d)]++; }
            }
        return c;
    }

    static PixelBox Box(int[] labels, int W, int H, int l)
    {
        int x0 = W, y0 = H, x1 = -1, y1 = -1;
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] == l) { int x = i % W, y = i / W; x0 = Math.Min(x0, x); y0 = Math.Min(y0, y); x1 = Math.Max(x1, x); y1 = Math.Max(y1, y); }
        return x1 < 0 ? new PixelBox(0, 0, 0, 0) : new PixelBox(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    }

    static ulong Hash(ulong key, int i) => Xoshiro256.Mix(key ^ (ulong)(uint)i * 0x9E3779B97F4A7C15UL);

    static byte Clamp(double v) => (byte)Math.Clamp((int)Math.Round(v), 0, 255);
}
