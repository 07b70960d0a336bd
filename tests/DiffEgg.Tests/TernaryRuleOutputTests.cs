using DiffEgg.Tests.Cli;
using System.Text.Json;
using DiffEgg.Cli;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Edges;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Refinement;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

/// <summary>One ternary rule everywhere: `edges` records it (JSON, safetensors metadata), its PNG follows it, and refine's soft scaling reads it back.</summary>
[Collection("Cli")]
public class TernaryRuleOutputTests
{
    public TernaryRuleOutputTests() => TorchRuntime.EnsureLoaded();

    static RgbImage Disc(int w, int h)
    {
        var img = new RgbImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                bool inside = (x - w / 2) * (x - w / 2) + (y - h / 2) * (y - h / 2) < w * h / 10;
                int i = 3 * (y * w + x);
                img.Pixels[i] = (byte)(inside ? 220 : 30);
                img.Pixels[i + 1] = (byte)(inside ? 120 : 60);
                img.Pixels[i + 2] = (byte)(inside ? 40 : 140);
            }
        return img;
    }

    static string RunEdges(TempDir dir, string outName, params string[] extra)
    {
        string input = dir.File("in"), output = dir.File(outName);
        Directory.CreateDirectory(input);
        if (!File.Exists(Path.Combine(input, "d.png"))) ImageIO.WriteRgbPng(Path.Combine(input, "d.png"), Disc(40, 32));
        int rc = DiffEggApp.Run(new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", input, "--out", output, "--fixed-timestep", "100", "--size", "32" }
            .Concat(extra).ToArray());
        Assert.Equal(0, rc);
        return output;
    }

    [Fact]
    public void Edges_RecordsTheRule_PngFollowsIt_AndSoftScaleReadsIt()
    {
        using var dir = new TempDir();
        foreach (var (name, extra) in new[] { (TernaryRule.Default.Name, Array.Empty<string>()), ("musigma", new[] { "--ternary", "musigma" }), ("quantile:0.4,0.8", new[] { "--ternary", "quantile:0.4,0.8" }) })
        {
            var rule = TernaryRule.Parse(name);
            string output = RunEdges(dir, "out-" + name.Replace(':', '_').Replace(',', '_'), extra);
            using var f = SafeTensorsFile.Open(Path.Combine(output, "d.edges.safetensors"));
            Assert.Equal(name, f.Metadata[EdgePipeline.TernaryRuleMetadataKey]);
            using var edges = f.Read("edges");
            var values = edges.data<float>().ToArray();

            using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "d.json"))))
            {
                var root = json.RootElement;
                Assert.Equal(name, root.GetProperty("ternary_rule").GetString());
                Assert.Equal(rule.Resolve(values).Name, root.GetProperty("ternary_applied").GetString());
                var thr = root.GetProperty("ternary_thresholds").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var (lo, hi) = rule.Thresholds(values);
                Assert.Equal(new[] { lo, hi }, thr);
            }

            // the PNG holds this rule's classes of the map written next to it
            using var png = TernaryEdges.ReadPng(Path.Combine(output, "d.ternary.png"));
            Assert.Equal(TernaryEdges.Classify(values, rule), png.data<sbyte>().ToArray());

            // refine's soft scaling uses the rule named in the metadata
            var (path, map) = EdgeMapReader.Load(output, "d", EdgeScale.Soft);
            Assert.EndsWith(".edges.safetensors", path);
            Assert.Equal(TernaryEdges.Soft(values, rule), map.Values);
        }
        // the rules differ on this map, so the last check can fail
        using var f1 = SafeTensorsFile.Open(Path.Combine(dir.File("out-musigma"), "d.edges.safetensors"));
        using var e1 = f1.Read("edges");
        var v1 = e1.data<float>().ToArray();
        Assert.NotEqual(TernaryEdges.Soft(v1, TernaryRule.MuSigma), TernaryEdges.Soft(v1, TernaryRule.Quantile(0.4, 0.8)));
    }

    [Fact]
    public void Edges_UnknownRuleIsAnOptionError()
    {
        using var dir = new TempDir();
        CliRun.Fails(2, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--input", dir.Path, "--out", dir.File("o"), "--ternary", "mu-sigma" }, new[] { "--ternary" }, new[] { dir.File("o") });
        Assert.False(Directory.Exists(dir.File("o")));
    }

    [Fact]
    public void SoftScale_FileWithoutRuleUsesTheDefault_UnknownRuleIsAnError()
    {
        using var dir = new TempDir();
        var values = new float[] { 0.01f, 0.01f, 0.02f, 0.05f, 0.1f, 0.2f, 1f, 3f };
        using (var t = tensor(values, new long[] { 2, 4 }))
        {
            SafeTensorsWriter.Save(dir.File("plain.edges.safetensors"), new Dictionary<string, TorchSharp.torch.Tensor> { ["edges"] = t });
            SafeTensorsWriter.Save(dir.File("bad.edges.safetensors"), new Dictionary<string, TorchSharp.torch.Tensor> { ["edges"] = t },
                metadata: new Dictionary<string, string> { [EdgePipeline.TernaryRuleMetadataKey] = "bogus" });
        }
        Assert.Equal(TernaryEdges.Soft(values, TernaryRule.Default), EdgeMapReader.Read(dir.File("plain.edges.safetensors"), scale: EdgeScale.Soft).Values);
        var ex = Assert.Throws<DiffEggException>(() => EdgeMapReader.Read(dir.File("bad.edges.safetensors"), scale: EdgeScale.Soft));
        Assert.Contains("bad.edges.safetensors", ex.Message);
        Assert.Contains("bogus", ex.Message);
    }
}
