using System.Diagnostics;
using DiffEgg.Refinement;
using static TorchSharp.torch;

namespace DiffEgg.Bench;

/// <summary>Times the phases of refinement separately (affinity, RIP, merge) on the benchmark scene.</summary>
public static class RefineProfile
{
    static double _last;
    public static int Run(string[] args)
    {
        var (edges, masks) = RefineBench.Scene(512, 20, 1);
        var sw = Stopwatch.StartNew();
        var proc = Process.GetCurrentProcess();
        string Cpu() { proc.Refresh(); var c = proc.TotalProcessorTime.TotalMilliseconds; var d = c - _last; _last = c; return $" (cpu {d:F0} ms)"; }
        Cpu();
        var E = RefineGrid.EdgesAt(edges, 128, 128);
        var M = RefineGrid.MasksAt(masks.Select(m => m.Pixels).ToList(), 512, 512, 128, 128);
        Console.WriteLine($"resample {sw.ElapsedMilliseconds} ms" + Cpu()); sw.Restart();
        using var aff = PathAffinity.Build(E);
        Console.WriteLine($"affinity K={aff.Offsets.Count} {sw.ElapsedMilliseconds} ms" + Cpu()); sw.Restart();
        var P = Rip.Run(aff, M, E, 256);
        Console.WriteLine($"rip 20 seeds exact {sw.ElapsedMilliseconds} ms" + Cpu()); sw.Restart();
        P = Rip.Run(aff, M, E, 256, 1e-4f);
        Console.WriteLine($"rip 20 seeds {sw.ElapsedMilliseconds} ms" + Cpu()); sw.Restart();
        for (int rep = 0; rep < 3; rep++)
        {
            var one = M.narrow(0, 0, 1);
            var t1 = Stopwatch.StartNew();
            System.Threading.Tasks.Parallel.For(0, 1, _ => { });
            Rip.Propagate(aff, one, 256);
            Console.WriteLine($"rip 1 seed exact {t1.ElapsedMilliseconds} ms ({1.0 * 128 * 128 * 81 * 256 / t1.Elapsed.TotalSeconds / 1e9:F2} G MAC/s wall)" + Cpu());
        }
        var up = RefineGrid.UpsampleThreshold(Rip.NormalizeToMax(P), 512, 512, 0.5f);
        Console.WriteLine($"upsample {sw.ElapsedMilliseconds} ms" + Cpu()); sw.Restart();
        var merged = MaskMerge.Merge(up.Select(u => new InstanceMask(512, 512, u)).ToList(), 0.5);
        Console.WriteLine($"merge {sw.ElapsedMilliseconds} ms -> {merged.Count}" + Cpu()); sw.Restart();
        InstanceRefiner.Refine(edges, masks);
        Console.WriteLine($"full {sw.ElapsedMilliseconds} ms" + Cpu()); sw.Restart();
        return 0;
    }
}
