using DiffEgg.Formats;

/// <summary>
/// `panoptic-gen` bench mode: writes a deterministic panoptic gt/pred pair (JSON + PNG folders) with void, crowd,
/// things and stuff, large segment ids, predictions that are perturbed copies of gt (many IoUs near 0.5), extra
/// segments and a declared category without segments. Usage: DiffEgg.Bench panoptic-gen --out DIR [--images N] [--size S]
/// </summary>
public static class PanopticGen
{
    public static int Run(string[] args)
    {
        string outDir = "bench-panoptic";
        int images = 200, size = 96;
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--out": outDir = args[++i]; break;
                case "--images": images = int.Parse(args[++i]); break;
                case "--size": size = int.Parse(args[++i]); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        var rng = new Random(31);
        var cats = new List<CocoCategory>
        {
            new(1, "t1", null, 1), new(2, "t2", null, 1), new(3, "t3", null, 1), new(4, "s4", null, 0), new(5, "s5", null, 0), new(6, "unused", null, 1),
        };
        var gt = new PanopticDataset { Categories = cats };
        var pred = new PanopticDataset { Categories = cats };
        string gtDir = Path.Combine(outDir, "gt"), predDir = Path.Combine(outDir, "pred");
        Directory.CreateDirectory(gtDir); Directory.CreateDirectory(predDir);
        for (int im = 1; im <= images; im++)
        {
            int w = size, h = size - rng.Next(size / 4);
            var g = new int[w * h];
            var p = new int[w * h];
            var gInfo = new List<(int id, long cat, int crowd)>();
            var pInfo = new List<(int id, long cat)>();
            int NewId(HashSet<int> used) { int id; do id = 1 + rng.Next(PanopticFiles.MaxSegmentId); while (!used.Add(id)); return id; }
            var gUsed = new HashSet<int>(); var pUsed = new HashSet<int>();
            // stuff bands
            int split = rng.Next(h / 4, 3 * h / 4);
            int s1 = NewId(gUsed), s2 = NewId(gUsed);
            gInfo.Add((s1, 4, 0)); gInfo.Add((s2, 5, 0));
            for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) g[y * w + x] = y < split ? s1 : s2;
            int ps1 = NewId(pUsed), ps2 = NewId(pUsed);
            pInfo.Add((ps1, 4)); pInfo.Add((ps2, rng.NextDouble() < 0.8 ? 5 : 4));
            int psplit = split + rng.Next(-h / 6, h / 6 + 1);
            for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) p[y * w + x] = y < psplit ? ps1 : ps2;
            // things (ellipses), some crowd
            int n = 2 + rng.Next(6);
            for (int k = 0; k < n; k++)
            {
                long cat = 1 + rng.Next(3);
                double cx = rng.NextDouble() * w, cy = rng.NextDouble() * h, rx = 3 + rng.NextDouble() * w / 5, ry = 3 + rng.NextDouble() * h / 5;
                int gid = NewId(gUsed);
                gInfo.Add((gid, cat, rng.NextDouble() < 0.1 ? 1 : 0));
                Paint(g, w, h, cx, cy, rx, ry, gid);
                if (rng.NextDouble() < 0.85)
                {
                    int pid = NewId(pUsed);
                    pInfo.Add((pid, rng.NextDouble() < 0.9 ? cat : 1 + rng.Next(3)));
                    double j = rng.NextDouble() * 0.6;
                    Paint(p, w, h, cx + (rng.NextDouble() - 0.5) * j * rx * 2, cy + (rng.NextDouble() - 0.5) * j * ry * 2, rx * (1 + (rng.NextDouble() - 0.5) * j), ry * (1 + (rng.NextDouble() - 0.5) * j), pid);
                }
            }
            for (int k = rng.Next(3); k > 0; k--)
            {
                int pid = NewId(pUsed);
                pInfo.Add((pid, 1 + rng.Next(5)));
                Paint(p, w, h, rng.NextDouble() * w, rng.NextDouble() * h, 2 + rng.NextDouble() * w / 6, 2 + rng.NextDouble() * h / 6, pid);
            }
            // void: a gt blob and a pred blob
            Paint(g, w, h, rng.NextDouble() * w, rng.NextDouble() * h, 2 + rng.NextDouble() * w / 8, 2 + rng.NextDouble() * h / 8, 0);
            Paint(p, w, h, rng.NextDouble() * w, rng.NextDouble() * h, 2 + rng.NextDouble() * w / 10, 2 + rng.NextDouble() * h / 10, 0);
            var gArea = new Dictionary<int, long>(); foreach (int v in g) gArea[v] = gArea.GetValueOrDefault(v) + 1;
            var pArea = new Dictionary<int, long>(); foreach (int v in p) pArea[v] = pArea.GetValueOrDefault(v) + 1;
            string file = $"{im:D6}.png";
            PanopticFiles.WritePng(Path.Combine(gtDir, file), g, w, h);
            PanopticFiles.WritePng(Path.Combine(predDir, file), p, w, h);
            gt.Images.Add(new CocoImage(im, w, h, $"{im:D6}.jpg"));
            var ga = new PanopticAnnotation { ImageId = im, FileName = file };
            foreach (var (id, cat, crowd) in gInfo)
                if (gArea.TryGetValue(id, out long a))
                    ga.Segments.Add(new PanopticSegment { Id = id, CategoryId = cat, IsCrowd = crowd, Area = rng.NextDouble() < 0.1 ? a + rng.Next(-3, 4) : a });
            gt.Annotations.Add(ga);
            var pa = new PanopticAnnotation { ImageId = im, FileName = file };
            foreach (var (id, cat) in pInfo)
                if (pArea.ContainsKey(id)) pa.Segments.Add(new PanopticSegment { Id = id, CategoryId = cat });
            pred.Annotations.Add(pa);
        }
        PanopticFiles.WriteJson(Path.Combine(outDir, "gt.json"), gt);
        PanopticFiles.WriteJson(Path.Combine(outDir, "pred.json"), pred);
        Console.WriteLine($"wrote {images} panoptic gt/pred pairs to {outDir}");
        return 0;
    }

    static void Paint(int[] map, int w, int h, double cx, double cy, double rx, double ry, int id)
    {
        int x0 = Math.Max(0, (int)(cx - rx)), x1 = Math.Min(w - 1, (int)(cx + rx) + 1);
        int y0 = Math.Max(0, (int)(cy - ry)), y1 = Math.Min(h - 1, (int)(cy + ry) + 1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
            {
                double dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry;
                if (dx * dx + dy * dy <= 1) map[y * w + x] = id;
            }
    }
}
