using DiffEgg.Tests.Cli;
using System.Text.Json;
using System.Text.RegularExpressions;
using DiffEgg.Cli;

namespace DiffEgg.Tests.Demo;

[Collection("Cli")]
public sealed class DemoCliTests : IDisposable
{
    readonly TempDir _temp = new("diffegg-demo-", "d");
    string _tmp => _temp.Path;

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void DemoRunsEndToEndAndWritesAConsistentReport()
    {
        Assert.Equal(0, DiffEggApp.Run(new[] { "demo", "--out", _tmp, "--count", "2", "--timesteps", "40,20", "--seed", "3" }));
        string index = Path.Combine(_tmp, "index.html"), metrics = Path.Combine(_tmp, "metrics.json");
        Assert.True(File.Exists(index));
        Assert.True(File.Exists(Path.Combine(_tmp, "simulated_coarse_instances.json")));
        Assert.True(File.Exists(Path.Combine(_tmp, "refined_instances.json")));
        Assert.True(File.Exists(Path.Combine(_tmp, "edges", "test_000001.ternary.png")));

        using var doc = JsonDocument.Parse(File.ReadAllText(metrics));
        var root = doc.RootElement;
        Assert.Equal(2, root.GetProperty("count").GetInt32());
        Assert.Equal(2, root.GetProperty("scenes").GetArrayLength());
        foreach (var set in root.GetProperty("instances").EnumerateObject())
            foreach (var stat in set.Value.EnumerateObject())
            {
                double v = stat.Value.GetDouble();
                Assert.True(v == -1 || (v >= 0 && v <= 1), $"{set.Name}.{stat.Name} = {v}");
            }
        // coarse, refined, oracle, and the shipped adapter's one-step edges (shown by default with the embedded model)
        Assert.NotNull(DiffEgg.Cli.Commands.DemoCommand.ShippedAdapter(null));
        Assert.Equal(4, root.GetProperty("instances").EnumerateObject().Count());
        Assert.True(root.GetProperty("instances").TryGetProperty("refined_one_step_edges", out _));
        foreach (var set in root.GetProperty("panoptic").EnumerateObject())
            foreach (var group in set.Value.EnumerateObject())
                foreach (var k in new[] { "pq", "sq", "rq" })
                {
                    var e = group.Value.GetProperty(k);
                    if (e.ValueKind == JsonValueKind.Null) continue; // a group with no category (NaN) is written as null
                    Assert.InRange(e.GetDouble(), 0, 1);
                }
        // the simulation ran on the generated ground truth
        Assert.True(root.GetProperty("simulation").GetProperty("coarse_instances").GetProperty("gt_instances").GetInt32() > 0);

        string html = File.ReadAllText(index);
        var refs = Regex.Matches(html, "(?:src|href)=\"([^\"]*)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.True(refs.Count >= 2 * 12, $"expected the report images of 2 scenes, found {refs.Count} references");
        foreach (var r in refs)
        {
            if (r.StartsWith("data:", StringComparison.Ordinal)) continue;
            Assert.DoesNotContain("://", r); // offline: no external resources
            Assert.True(File.Exists(Path.Combine(_tmp, r)), $"index.html references {r}, which does not exist");
        }
        Assert.DoesNotContain("<script", html);
        Assert.Contains("simulated", html);
        Assert.Contains("one-step edges (Alg 3", html); // the shipped adapter, shown by default
        Assert.Equal(2, Regex.Matches(html, "<svg class=\"kl\"").Count); // one PeakKL chart per scene (two timesteps)
    }

    [Fact]
    public void BadOptionsFailCleanly()
    {
        CliRun.Fails(2, new[] { "demo", "--out", _tmp, "--count", "0" }, new[] { "--count" });
        CliRun.Fails(2, new[] { "demo", "--out", _tmp, "--timesteps", "a,b" }, new[] { "--timesteps" });
        CliRun.Fails(2, new[] { "demo", "--out", _tmp, "--edge-input", "bogus" }, new[] { "--edge-input" });
        CliRun.Fails(1, new[] { "demo", "--out", _tmp, "--count", "1", "--model", Path.Combine(_tmp, "no-model") }, new[] { Path.Combine(_tmp, "no-model") });
        CliRun.Fails(2, new[] { "demo", "--out", _tmp, "--count", "1", "--adapter", Path.Combine(_tmp, "no-adapter") }, new[] { Path.Combine(_tmp, "no-adapter") });
        CliRun.Fails(2, new[] { "demo", "--out", _tmp, "--count", "1", "--adapter", " " }, new[] { "--adapter" });
        CliRun.Fails(2, new[] { "demo", "--out", _tmp, "--count", "1", "--adapter", _tmp, "--no-adapter" }, new[] { "--adapter", "--no-adapter" });
    }

    [Fact]
    public void AdapterShowsOneStepEdgesBesideThePseudoEdges()
    {
        // the adapter shipped with the embedded model (models/embedded/edge-adapter)
        string adapter = Path.Combine(DiffEgg.Models.EmbeddedModel.DefaultPath, "edge-adapter");
        Assert.Equal(0, DiffEggApp.Run(new[] { "demo", "--out", _tmp, "--count", "1", "--timesteps", "20", "--no-oracle", "--adapter", adapter }));
        Assert.True(File.Exists(Path.Combine(_tmp, "edges", "test_000000.ternary.png")));
        Assert.True(File.Exists(Path.Combine(_tmp, "edges-onestep", "test_000000.ternary.png")));
        Assert.True(File.Exists(Path.Combine(_tmp, "onestep_refined_instances.json")));
        Assert.True(File.Exists(Path.Combine(_tmp, "report", "test_000000_onestep_refined.png")));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_tmp, "metrics.json")));
        var inst = doc.RootElement.GetProperty("instances");
        Assert.True(inst.TryGetProperty("refined", out _));
        Assert.True(inst.TryGetProperty("refined_one_step_edges", out _));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_tmp, "edges-onestep", "test_000000.json")));
        Assert.Equal("one-step", json.RootElement.GetProperty("method").GetString());
        Assert.Contains("one-step edges (adapter)", File.ReadAllText(Path.Combine(_tmp, "index.html")));
    }
}
