using System.Diagnostics;
using DiffEgg.Models;
using DiffEgg.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Bench;

/// <summary>`unet-split [THREADS] [BATCH] [PX]`: the embedded UNet on random PX×PX inputs (default 2 threads, batch 4, 64 px): ms per image until each up block's output arrives, and to the end.</summary>
public static class UNetSplitProbe
{
    sealed class Clock : IDecoderFeatureSink
    {
        public Stopwatch Sw = new();
        public double[] At = new double[8];
        public void AddUpBlock(int index, Tensor hidden) => At[index] += Sw.Elapsed.TotalMilliseconds;
    }
    public static int Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1]) : 2;
        int b = args.Length > 2 ? int.Parse(args[2]) : 4;
        int px = args.Length > 3 ? int.Parse(args[3]) : 64;
        torch.set_num_threads(threads);
        using var model = DiffusionModelFolder.Load(EmbeddedModel.DefaultPath, CPU);
        using var x = torch.randn(b, 3, px, px);
        using var t = torch.tensor(new long[] { 0 });
        using var cond = model.EncodeEmptyPrompt();
        using var c = cond.expand(b, -1, -1);
        var clock = new Clock();
        int reps = Math.Max(4, 128 / b);
        double total = 0;
        for (int r = -2; r < reps; r++)
        {
            if (r == 0) { clock.At = new double[8]; total = 0; }
            using var s = torch.NewDisposeScope(); using var _ = torch.no_grad();
            clock.Sw.Restart();
            model.Unet.forward(x, t, c, decoder: clock);
            total += clock.Sw.Elapsed.TotalMilliseconds;
        }
        double per = reps * b;
        Console.WriteLine($"{px} px, threads {threads} batch {b}: up0 {clock.At[0] / per:F2}  up1 {clock.At[1] / per:F2}  up2 {clock.At[2] / per:F2}  end {total / per:F2} ms/image");
        return 0;
    }
}
