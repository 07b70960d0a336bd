using DiffEgg.Baseline;
using DiffEgg.Data;
using DiffEgg.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Bench;

/// <summary>`baseline-probe IMAGE [T]`: the baseline's feature map on one image — cosine-similarity quantiles (raw and mean-centred) and the masks of both methods as ASCII.</summary>
public static class BaselineProbe
{
    public static int Run(string[] args)
    {
        using var model = DiffusionModelFolder.Load(EmbeddedModel.DefaultPath, CPU);
        int t = args.Length > 2 ? int.Parse(args[2]) : 10;
        using var seg = new BaselineSegmenter(model, new BaselineOptions { Timestep = t, Size = 64 });
        var img = ImageIO.ReadRgb(args[1]);
        var (f, c, h, w) = seg.Features(img);
        Console.WriteLine($"{seg.LayerName}: {h}×{w}×{c}");
        using var ft = tensor(f, new long[] { h * w, c });
        foreach (var (name, x) in new[] { ("raw", ft), ("centred", ft - ft.mean(new long[] { 0 }, true)) })
        {
            var n = x / x.norm(1, true);
            var cos = n.matmul(n.t()).flatten();
            var q = torch.quantile(cos, tensor(new double[] { 0.01, 0.1, 0.5, 0.9, 0.99 }).to_type(ScalarType.Float32));
            Console.WriteLine($"{name} cosine quantiles 1/10/50/90/99 %: {string.Join(" ", q.data<float>().ToArray().Select(v => v.ToString("F3")))}");
        }
        void Show(string title, IReadOnlyList<GridMask> masks)
        {
            Console.WriteLine($"{title}: {masks.Count} mask(s), scores {string.Join(" ", masks.Select(m => m.Score.ToString("F2")))}");
            for (int y = 0; y < h; y++)
                Console.WriteLine(new string(Enumerable.Range(0, w).Select(x => { int k = masks.ToList().FindIndex(m => m.Mask[y * w + x]); return k < 0 ? '.' : (char)('A' + k % 26); }).ToArray()));
        }
        BaselineSegmenter.CenterRows(f, c);
        Show("maskcut", NormalizedCut.MaskCut(f, c, h, w));
        Show("diffcut", NormalizedCut.DiffCut(f, c, h, w));
        return 0;
    }
}
