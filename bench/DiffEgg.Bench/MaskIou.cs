using System.Globalization;
using DiffEgg.Formats;

namespace DiffEgg.Bench;

/// <summary>
/// Per-object comparison of two results files against a COCO ground truth: for every ground-truth instance, the best IoU of any
/// mask of A and of B on its image, and the objects whose best IoU changed most (to find what a refinement damages or repairs).
/// <code>DiffEgg.Bench mask-iou GT.json A.json B.json [--top 15]</code>
/// </summary>
public static class MaskIou
{
    public static int Run(string[] args)
    {
        if (args.Length < 4) throw new ArgumentException("usage: mask-iou GT.json A.json B.json [--top 15]");
        var gt = CocoFiles.ReadInstances(args[1]);
        int top = args.Length > 5 && args[4] == "--top" ? int.Parse(args[5], CultureInfo.InvariantCulture) : 15;
        var a = CocoFiles.ReadResults(args[2], gt).ToLookup(r => r.ImageId);
        var b = CocoFiles.ReadResults(args[3], gt).ToLookup(r => r.ImageId);
        var annotations = gt.Annotations.ToLookup(x => x.ImageId);
        var rows = new List<(long Image, long Ann, long Area, double A, double B)>();
        foreach (var img in gt.Images)
        {
            List<Rle> Masks(ILookup<long, CocoResult> l) => l[img.Id].Where(r => r.Segmentation is not null).Select(r => r.Segmentation!.ToRle(img.Height, img.Width)).ToList();
            var ma = Masks(a);
            var mb = Masks(b);
            foreach (var ann in annotations[img.Id].Where(x => x.Segmentation is not null))
            {
                var g = ann.Segmentation!.ToRle(img.Height, img.Width);
                rows.Add((img.Id, ann.Id, g.Area, Rle.BestMatch(ma, g).IoU, Rle.BestMatch(mb, g).IoU));
            }
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{rows.Count} objects: mean best IoU A {rows.Average(r => r.A):F4}, B {rows.Average(r => r.B):F4}; B better {rows.Count(r => r.B > r.A + 1e-9)}, worse {rows.Count(r => r.B < r.A - 1e-9)}, same {rows.Count(r => Math.Abs(r.B - r.A) <= 1e-9)}"));
        foreach (var r in rows.OrderBy(r => r.B - r.A).Take(top))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  image {r.Image} object {r.Ann} area {r.Area}: IoU {r.A:F3} → {r.B:F3}"));
        return 0;
    }
}
