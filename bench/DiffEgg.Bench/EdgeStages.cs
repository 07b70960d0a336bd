using DiffEgg.Attention;
using DiffEgg.Common;
using DiffEgg.Edges;
using DiffEgg.Models;
using DiffEgg.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Bench;

/// <summary>
/// <c>edges-stages MODEL SIZE [--no-dense] [--chunk MB] [--repeat N]</c>: time and peak resident memory of the stages of one edge map
/// (one UNet pass at t = 10, null text) on one image of SIZE×SIZE pixels, in one process, each stage's peak measured above the RSS
/// after setup (VmHWM reset through /proc/self/clear_refs):
/// <list type="bullet">
/// <item>forward without capture (fused attention), and with Q/K capture (the default path), their ratio;</item>
/// <item>streaming: accumulated rows from Q/K (Eq 11-12) + EdgeKL (Eq 6) block by block;</item>
/// <item>dense (the explicit path the tests use as oracle): forward with explicit probabilities into AttentionAccumulator + EdgeKL
/// on the whole [HW, HW] map; skipped with --no-dense (it needs O((HW)²) memory).</item>
/// </list>
/// MODEL: a diffusers model folder (its UNet; input x₀ = a random latent or image tensor of the processed size) or <c>quarter</c> /
/// <c>full</c>: a random-weight SD 1.5 UNet at 1/4 or full width (latent = SIZE/8, text states random).
/// </summary>
public static class EdgeStages
{
    public static int Run(string[] args)
    {
        string modelArg = args[1];
        int size = int.Parse(args[2]);
        bool dense = !args.Contains("--no-dense");
        int ci = Array.IndexOf(args, "--chunk");
        long chunk = ci > 0 ? long.Parse(args[ci + 1]) << 20 : EdgeKL.DefaultChunkBytes;
        int ri = Array.IndexOf(args, "--repeat");
        int repeat = ri > 0 ? int.Parse(args[ri + 1]) : 1;
        TorchRuntime.EnsureLoaded();
        manual_seed(0);

        DiffusionModelFolder? folder = null;
        UNet2DConditionModel unet;
        Tensor cond;
        int latent;
        if (modelArg is "quarter" or "full")
        {
            var cfg = modelArg == "quarter" ? UNetBenchmarks.QuarterConfig : UNet2DConditionConfig.StableDiffusion15;
            unet = new UNet2DConditionModel(cfg);
            unet.eval();
            latent = size / 8;
            cond = randn(1, 77, cfg.CrossAttentionDim);
        }
        else
        {
            folder = DiffusionModelFolder.Load(modelArg);
            unet = folder.Unet;
            latent = size / (folder.Vae?.DownFactor ?? 1);
            cond = folder.EncodeEmptyPrompt();
        }
        var sample = randn(1, unet.Config.InChannels, latent, latent);
        var t = tensor(new long[] { 10 });
        Console.WriteLine($"edges-stages {modelArg} at {size}×{size} px: UNet input {latent}×{latent}, {Environment.ProcessorCount} cores, torch threads {get_num_threads()}, chunk budget {chunk >> 20} MiB, RSS after setup {Status("VmRSS:") / 1024:F0} MiB");

        float Off() { using var s = NewDisposeScope(); using var _ = no_grad(); return unet.forward(sample, t, cond)[0, 0, 0, 0].item<float>(); }
        QueryKeyAttention Qk() { using var s = NewDisposeScope(); using var _ = no_grad(); var qk = new QueryKeyAttention(); unet.forward(sample, t, cond, qk); return qk; }

        Off(); // warm-up
        for (int rep = 0; rep < repeat; rep++)
        {
            var off = Measure(() => Off());
            QueryKeyAttention? held = null;
            var cap = Measure(() => { held = Qk(); return held.LayerCount; });
            double heldMiB = held!.HeldBytes / 1048576.0;
            var stream = Measure(() =>
            {
                using var s = NewDisposeScope();
                using var _ = no_grad();
                return EdgeKL.Compute(held, chunkBytes: chunk).sum().item<float>();
            });
            Console.WriteLine($"forward, no capture:        {off.sec,8:F3} s  peak +{off.mib,7:F0} MiB");
            Console.WriteLine($"forward, Q/K capture:       {cap.sec,8:F3} s  peak +{cap.mib,7:F0} MiB  (Q/K held: {heldMiB:F1} MiB; grid {held.Height}×{held.Width})  ratio {cap.sec / off.sec:F3}×");
            Console.WriteLine($"streaming rows + EdgeKL:    {stream.sec,8:F3} s  peak +{stream.mib,7:F0} MiB");
            Console.WriteLine($"Q/K path total:             {cap.sec + stream.sec,8:F3} s  peak +{Math.Max(cap.mib, stream.mib + heldMiB),7:F0} MiB");
            if (dense)
            {
                held.Dispose();
                float denseSum = 0;
                var fwd = Measure(() =>
                {
                    using var s = NewDisposeScope();
                    using var _ = no_grad();
                    using var acc = new AttentionAccumulator();
                    unet.forward(sample, t, cond, acc);
                    using var map = acc.Result();
                    denseSum = EdgeKL.Compute(map, acc.Height, acc.Width).sum().item<float>();
                    return denseSum;
                });
                Console.WriteLine($"dense (explicit maps + EdgeKL): {fwd.sec,8:F3} s  peak +{fwd.mib,7:F0} MiB  (edge sum {denseSum:G6} vs streaming {stream.value:G6})");
            }
            else held.Dispose();
        }
        sample.Dispose(); t.Dispose(); cond.Dispose();
        if (folder is not null) folder.Dispose(); else unet.Dispose();
        return 0;
    }

    static (float value, double sec, double mib) Measure(Func<float> f)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        File.WriteAllText("/proc/self/clear_refs", "5");
        double before = Status("VmRSS:");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        float v = f();
        double sec = sw.Elapsed.TotalSeconds;
        return (v, sec, (Status("VmHWM:") - before) / 1024.0);
    }

    static double Status(string key) =>
        double.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
}
