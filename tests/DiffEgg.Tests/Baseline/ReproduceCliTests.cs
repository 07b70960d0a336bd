using System.Text.Json;
using DiffEgg.Tests.Cli;

namespace DiffEgg.Tests.Baseline;

[Collection("Cli")]
public class ReproduceCliTests
{
    [Fact]
    public void QuickReproductionWritesTheThreeTablesAndTheStageTimes()
    {
        using var dir = new TempDir("diffegg-reproduce", "r");
        var r = CliRun.Capture("reproduce", "--out", dir, "--quick");
        Assert.Equal(0, r.Code);
        foreach (var f in new[] { "results.md", "results.json", "ap.png" }) Assert.True(File.Exists(Path.Combine(dir, f)), f);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        var root = doc.RootElement;
        Assert.Equal(3, root.GetProperty("scenes").GetInt32());
        Assert.Equal("edge-adapter", root.GetProperty("adapter").GetString());   // the shipped adapter by default
        var t1 = root.GetProperty("table1").EnumerateArray().ToList();
        var tE = root.GetProperty("tableE").EnumerateArray().ToList();
        var tF = root.GetProperty("tableF").EnumerateArray().ToList();
        Assert.Equal(6, t1.Count);
        Assert.Equal(6, tE.Count);   // coarse, fixed t, PeakKL, one-step, + RIP, + merge
        Assert.Equal(new[] { "kl", "jsd", "l2", "cos" }, tF.Select(x => x.GetProperty("label").GetString()!.Split(' ')[^1]));
        foreach (var row in t1.Concat(tE).Concat(tF))
            foreach (var k in new[] { "AP", "AP50", "AP75", "AR100" }) Assert.InRange(row.GetProperty(k).GetDouble(), 0, 1);
        // every Table E row counts against the same broken objects; Table F carries boundary F1
        Assert.Single(tE.Select(x => x.GetProperty("merged_total").GetInt32()).Distinct());
        Assert.All(tF, x => Assert.InRange(x.GetProperty("boundary_f1").GetDouble(), 0, 1));
        // the last Table E row is the default refinement, which is Table 1's "simulated + DiffEgg" row
        Assert.Equal(t1[1].GetProperty("AP").GetDouble(), tE[^1].GetProperty("AP").GetDouble());
        Assert.True(root.GetProperty("ms_per_image").EnumerateObject().Count() >= 8);
        string md = File.ReadAllText(Path.Combine(dir, "results.md"));
        Assert.Contains("## Table E shape", md);
        Assert.Contains("diffegg reproduce --out", md);
    }
}
