using System.Diagnostics;
using DiffEgg.Refinement;

namespace DiffEgg.Bench;

/// <summary>
/// Console benchmark of <see cref="InstanceRefiner.Refine"/> on 512×512 scenes with 20 masks (a grid of touching boxes with their
/// outlines as edges; masks are a mix of merged pairs, fragments and clean boxes). Run under /usr/bin/time -v for peak memory:
/// <c>/usr/bin/time -v dotnet bench/DiffEgg.Bench/bin/Release/net10.0/DiffEgg.Bench.dll refine [images] [masks] [side] [tolerance]</c>.
/// </summary>
public static class RefineBench
{
    public static int Run(string[] args)
    {
        int images = args.Length > 1 ? int.Parse(args[1]) : 5;
        int nMasks = args.Length > 2 ? int.Parse(args[2]) : 20;
        int side = args.Length > 3 ? int.Parse(args[3]) : 512;
        float tol = args.Length > 4 ? float.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture) : new RefineOptions().Tolerance;
        var opts = new RefineOptions { Tolerance = tol };
        var (edges, masks) = Scene(side, nMasks, 1);
        // warm-up (JIT, libtorch init)
        InstanceRefiner.Refine(edges, masks, opts);
        var times = new List<double>();
        var proc = Process.GetCurrentProcess();
        proc.Refresh();
        double cpu0 = proc.TotalProcessorTime.TotalMilliseconds;
        int outCount = 0;
        for (int i = 0; i < images; i++)
        {
            var (e, m) = Scene(side, nMasks, 100 + i);
            var sw = Stopwatch.StartNew();
            outCount += InstanceRefiner.Refine(e, m, opts).Count;
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        proc.Refresh();
        double cpuPerImage = (proc.TotalProcessorTime.TotalMilliseconds - cpu0) / images;
        times.Sort();
        Console.WriteLine($"refine {side}x{side}, {nMasks} masks, tolerance {tol}, {images} images: median {times[times.Count / 2]:F0} ms/image, min {times[0]:F0}, max {times[^1]:F0}; CPU {cpuPerImage:F0} ms/image; {outCount / (double)images:F1} masks out per image; torch threads {TorchSharp.torch.get_num_threads()}");
        return 0;
    }

    /// <summary>A 5×4 grid of boxes separated by 2-px edges; masks: every other pair merged, some boxes split in halves, the rest clean.</summary>
    public static (EdgeMap Edges, List<InstanceMask> Masks) Scene(int side, int nMasks, int seed)
    {
        var rnd = new Random(seed);
        var e = new float[side * side];
        int cols = 5, rows = 4, cw = side / cols, ch = side / rows;
        var boxes = new List<(int y0, int y1, int x0, int x1)>();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int y0 = r * ch + 2, y1 = (r + 1) * ch - 3, x0 = c * cw + 2, x1 = (c + 1) * cw - 3;
                boxes.Add((y0, y1, x0, x1));
                for (int x = x0 - 2; x <= x1 + 2; x++) for (int t = 1; t <= 2; t++) { Set(y0 - t, x); Set(y1 + t, x); }
                for (int y = y0 - 2; y <= y1 + 2; y++) for (int t = 1; t <= 2; t++) { Set(y, x0 - t); Set(y, x1 + t); }
            }
        void Set(int y, int x) { if (y >= 0 && y < side && x >= 0 && x < side) e[y * side + x] = 0.6f + 0.4f * (float)rnd.NextDouble(); }
        var masks = new List<InstanceMask>();
        int b = 0;
        while (masks.Count < nMasks)
        {
            var (y0, y1, x0, x1) = boxes[b % boxes.Count];
            int kind = rnd.Next(3);
            if (kind == 0 && b % cols != cols - 1)
            {
                var (_, _, _, x1b) = boxes[(b + 1) % boxes.Count];
                masks.Add(Box(side, y0, y1, x0, x1b, rnd.NextDouble()));
            }
            else if (kind == 1)
            {
                int xm = (x0 + x1) / 2;
                masks.Add(Box(side, y0, y1, x0, xm, rnd.NextDouble()));
                if (masks.Count < nMasks) masks.Add(Box(side, y0, y1, xm + 1, x1, rnd.NextDouble()));
            }
            else masks.Add(Box(side, y0 + rnd.Next(4), y1 - rnd.Next(4), x0 + rnd.Next(4), x1 - rnd.Next(4), rnd.NextDouble()));
            b++;
        }
        return (new EdgeMap(side, side, e), masks);
    }

    static InstanceMask Box(int side, int y0, int y1, int x0, int x1, double score)
    {
        var m = new byte[side * side];
        for (int y = y0; y <= y1; y++) for (int x = x0; x <= x1; x++) m[y * side + x] = 1;
        return new InstanceMask(side, side, m, 1, score);
    }
}
