using System.Diagnostics;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.FineTuning;
using DiffEgg.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Bench;

/// <summary>
/// `onestep-profile IMAGES_DIR [ADAPTER] [COUNT]`: where the time of one-step edges goes — batched UNet pass, G_φ and the
/// post-processing — on the embedded model, for batch sizes 1, 4, 16 (ms per image, after one warm-up batch).
/// </summary>
public static class OneStepProfile
{
    public static int Run(string[] args)
    {
        string dir = args[1];
        string adapterDir = args.Length > 2 ? args[2] : Path.Combine(EmbeddedModel.DefaultPath, "edge-adapter");
        int count = args.Length > 3 ? int.Parse(args[3]) : 64;
        using var model = DiffusionModelFolder.Load(EmbeddedModel.DefaultPath, CPU);
        using var adapter = EdgeAdapter.Load(adapterDir, model.Unet);
        var images = ImageIO.ListImages(dir).Take(count).Select(p => ImageIO.ReadRgb(p, out _)).ToList();
        using var pipe = new OneStepEdgePipeline(model, adapter, new EdgePipelineOptions { Size = 64 });
        adapter.Lora.Merge();
        Console.WriteLine($"threads {torch.get_num_threads()}, {images.Count} images");
        foreach (int b in new[] { 1, 4, 16, 32 })
        {
            foreach (var r in pipe.RunBatch(images.Take(b).ToList())) r.Dispose(); // warm-up
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < images.Count; i += b)
                foreach (var r in pipe.RunBatch(images.Skip(i).Take(b).ToList())) r.Dispose();
            Console.WriteLine($"batch {b}: {sw.Elapsed.TotalMilliseconds / images.Count:F2} ms/image (RunBatch)");
            // the UNet alone
            using var x = torch.randn(b, 3, 64, 64);
            using var t = torch.tensor(new long[] { 0 });
            using var cond = model.EncodeEmptyPrompt();
            using var c = cond.expand(b, -1, -1);
            sw.Restart();
            int reps = Math.Max(1, images.Count / b);
            for (int i = 0; i < reps; i++) { using var s = torch.NewDisposeScope(); using var _ = torch.no_grad(); model.Unet.forward(x, t, c); }
            Console.WriteLine($"batch {b}: {sw.Elapsed.TotalMilliseconds / (reps * b):F2} ms/image (UNet forward alone)");
        }
        return 0;
    }
}
