using DiffEgg.Attention;
using DiffEgg.Common;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Bench;

/// <summary>
/// <c>unet-file UNET_DIR INPUTS.safetensors OUT.safetensors [--mode off|qk|probs] [--runs N] [--threads N] [--map]</c>:
/// one UNet forward on given inputs, timed, for the side-by-side comparison with diffusers (<c>tools/bench_diffusers.py</c>).
/// Loads a diffusers UNet folder (config.json + diffusion_pytorch_model.safetensors), reads <c>sample</c>, <c>timestep</c> and
/// <c>encoder_hidden_states</c> from INPUTS, runs one warm-up and N timed forwards (no grad) and writes the last output as <c>out</c>
/// into OUT. Modes:
/// <list type="bullet">
/// <item><c>off</c>: no capture (fused attention);</item>
/// <item><c>qk</c>: Q/K capture into <see cref="QueryKeyAttention"/> (the default capture path); "accumulate" is <c>Rows(0, H)</c>, the whole
/// accumulated map (Eq 11-12);</item>
/// <item><c>probs</c>: explicit probabilities into <see cref="AttentionAccumulator"/> (head mean summed per resolution during the forward,
/// as a paper-style attention hook); "accumulate" is <see cref="AttentionAccumulator.Result"/>.</item>
/// </list>
/// Prints one line per run, <c>run I: forward S s[, accumulate S s]</c> (the forward time covers the forward with its capture only).
/// With <c>--map</c> the last run's accumulated map <c>[H·W, H·W]</c> is written as <c>map</c> too. Threads: <c>--threads</c>, else env
/// DIFFEGG_BENCH_THREADS, else TorchSharp's default.
/// </summary>
public static class UNetFile
{
    const string Usage = "usage: DiffEgg.Bench unet-file UNET_DIR INPUTS.safetensors OUT.safetensors [--mode off|qk|probs] [--runs N] [--threads N] [--map]";

    public static int Run(string[] args)
    {
        if (args.Length < 4) { Console.Error.WriteLine(Usage); return 2; }
        string dir = args[1], inputs = args[2], outPath = args[3];
        string Opt(string name, string def) { int i = Array.IndexOf(args, name); return i > 0 && i + 1 < args.Length ? args[i + 1] : def; }
        string mode = Opt("--mode", "off");
        if (mode is not ("off" or "qk" or "probs")) { Console.Error.WriteLine($"unet-file: --mode {mode}: expected off, qk or probs\n{Usage}"); return 2; }
        int runs = int.Parse(Opt("--runs", "3"));
        bool writeMap = args.Contains("--map");
        if (writeMap && mode == "off") { Console.Error.WriteLine("unet-file: --map needs --mode qk or probs"); return 2; }

        TorchRuntime.EnsureLoaded();
        string threads = Opt("--threads", Environment.GetEnvironmentVariable("DIFFEGG_BENCH_THREADS") ?? "");
        if (threads.Length > 0) set_num_threads(int.Parse(threads));

        using var unet = UNet2DConditionModel.FromFolder(dir);
        Tensor sample, timestep, ehs;
        using (var f = SafeTensorsFile.Open(inputs))
        {
            sample = f.Read("sample", ScalarType.Float32);
            timestep = f.Read("timestep");
            ehs = f.Read("encoder_hidden_states", ScalarType.Float32);
        }
        Console.WriteLine($"unet-file {dir}: mode {mode}, sample [{string.Join(",", sample.shape)}], torch threads {get_num_threads()}, {Environment.ProcessorCount} cores");

        Tensor? output = null, map = null;
        for (int run = 0; run <= runs; run++) // run 0: warm-up
        {
            output?.Dispose(); map?.Dispose();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            double fwd, accSec = double.NaN;
            using (no_grad())
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                switch (mode)
                {
                    case "off":
                        output = unet.forward(sample, timestep, ehs);
                        fwd = sw.Elapsed.TotalSeconds;
                        map = null;
                        break;
                    case "qk":
                    {
                        using var qk = new QueryKeyAttention();
                        output = unet.forward(sample, timestep, ehs, qk);
                        fwd = sw.Elapsed.TotalSeconds;
                        sw.Restart();
                        map = qk.Rows(0, qk.Height);
                        accSec = sw.Elapsed.TotalSeconds;
                        break;
                    }
                    default:
                    {
                        using var acc = new AttentionAccumulator();
                        output = unet.forward(sample, timestep, ehs, acc);
                        fwd = sw.Elapsed.TotalSeconds;
                        sw.Restart();
                        using (var r = acc.Result()) map = r[0].clone();
                        accSec = sw.Elapsed.TotalSeconds;
                        break;
                    }
                }
            }
            string label = run == 0 ? "warm-up" : $"run {run}";
            Console.WriteLine(double.IsNaN(accSec) ? $"{label}: forward {fwd:F3} s" : $"{label}: forward {fwd:F3} s, accumulate {accSec:F3} s");
        }

        var save = new List<KeyValuePair<string, Tensor>> { new("out", output!) };
        if (writeMap && map is not null) save.Add(new("map", map));
        SafeTensorsWriter.Save(outPath, save);
        output!.Dispose(); map?.Dispose();
        sample.Dispose(); timestep.Dispose(); ehs.Dispose();
        return 0;
    }
}
