using System.Globalization;
using DiffEgg.Formats;

/// <summary>
/// `maskapi-check FILE` bench mode: compares DiffEgg's Rle against outputs of pycocotools' maskApi.c compiled from the
/// reference source (see docs/evaluation.md). Each line: h w | polygon 1 | polygon 2 | box | rleToString of frPoly(1),
/// frPoly(2), union, intersection, frBbox(box) | rleToBbox(1) | rleArea(1) | rleIou(1,2) non-crowd, crowd | bbIou non-crowd, crowd.
/// </summary>
public static class MaskApiCheck
{
    public static int Run(string[] args)
    {
        int lines = 0, bad = 0;
        foreach (var line in File.ReadLines(args[0]))
        {
            lines++;
            var f = line.Split('|');
            var hw = f[0].Split(' ');
            int h = int.Parse(hw[0]), w = int.Parse(hw[1]);
            double[] Nums(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            var p1 = Nums(f[1])[1..];
            var p2 = Nums(f[2])[1..];
            var box = Nums(f[3]);
            var r1 = Rle.FromPolygon(p1, h, w);
            var r2 = Rle.FromPolygon(p2, h, w);
            var bb = r1.ToBbox();
            var bb2 = r2.ToBbox();
            var checks = new (string name, bool ok)[]
            {
                ("frPoly 1", r1.ToCompressedString() == f[4]),
                ("frPoly 2", r2.ToCompressedString() == f[5]),
                ("merge union", Rle.Union(r1, r2).ToCompressedString() == f[6]),
                ("merge intersect", Rle.Intersect(r1, r2).ToCompressedString() == f[7]),
                ("frBbox", Rle.FromBbox(box, h, w).ToCompressedString() == f[8]),
                ("frString", Rle.FromCompressedString(f[4], h, w).Equals(r1)),
                ("toBbox", bb.SequenceEqual(Nums(f[9]))),
                ("area", r1.Area == long.Parse(f[10])),
                ("iou", Rle.Iou(r1, r2, false) == double.Parse(f[11], CultureInfo.InvariantCulture)),
                ("iou crowd", Rle.Iou(r1, r2, true) == double.Parse(f[12], CultureInfo.InvariantCulture)),
                ("bbIou", Rle.BboxIou(bb, bb2, false) == double.Parse(f[13], CultureInfo.InvariantCulture)),
                ("bbIou crowd", Rle.BboxIou(bb, bb2, true) == double.Parse(f[14], CultureInfo.InvariantCulture)),
            };
            foreach (var (name, ok) in checks)
                if (!ok)
                {
                    bad++;
                    if (bad <= 10) Console.WriteLine($"line {lines}: {name} differs");
                }
        }
        Console.WriteLine($"maskApi check: {lines} cases x 12 checks, {bad} differences");
        return bad == 0 ? 0 : 1;
    }
}
