using BenchmarkDotNet.Running;
using DiffEgg.Bench;

// `mem R` runs one accumulation (16 SD 1.5 layers) and one EdgeKL at latent side R, printing the wall time and the
// peak resident memory each adds above the resident memory after setup (Linux: peak reset via /proc/self/clear_refs,
// read from VmHWM). Anything else goes to BenchmarkDotNet.
if (args.Length == 2 && args[0] == "mem" && int.TryParse(args[1], out int r))
{
    var b = new EdgesBenchmarks { R = r };
    b.Setup();
    b.EdgeKL_KL(); // warm-up of the native code paths (small effect on memory)
    GC.Collect();
    GC.WaitForPendingFinalizers();
    var (acc, tAcc) = Measure(() => b.Accumulate_SD15_16Layers());
    var (edge, tEdge) = Measure(() => b.EdgeKL_KL());
    Console.WriteLine($"R={r}: accumulate 16 layers {tAcc.sec:F2} s, peak +{tAcc.mib:F0} MiB; EdgeKL {tEdge.sec:F2} s, peak +{tEdge.mib:F0} MiB (checks {acc:G3} {edge:G3})");
    var split = b.AccumulateSplitTimes();
    Console.WriteLine($"R={r}: accumulate split: 16×Add {split.add:F2} s, Result {split.result:F2} s");
    b.Cleanup();
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(EdgesBenchmarks).Assembly).Run(args);

static (float value, (double sec, double mib) m) Measure(Func<float> f)
{
    File.WriteAllText("/proc/self/clear_refs", "5"); // reset VmHWM to the current RSS
    double before = Status("VmRSS:");
    var sw = System.Diagnostics.Stopwatch.StartNew();
    float v = f();
    double sec = sw.Elapsed.TotalSeconds;
    double peak = Status("VmHWM:");
    return (v, (sec, (peak - before) / 1024.0));
}

static double Status(string key) =>
    double.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
