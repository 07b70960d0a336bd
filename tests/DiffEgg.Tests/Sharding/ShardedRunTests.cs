using System.Diagnostics;
using System.Text.Json;
using DiffEgg.Cli;
using DiffEgg.Data;
using DiffEgg.Formats;
using DiffEgg.Sharding;
using DiffEgg.Tests.Cli;
using Xunit.Abstractions;

namespace DiffEgg.Tests.Sharding;

/// <summary>
/// Sharded runs as a scheduler starts them: n separate <c>diffegg</c> processes with Slurm / Kubernetes variables, then
/// <c>diffegg merge</c>; the merged output must be byte-identical to one unsharded run. Plus kill-and-resume and the merge's refusals.
/// </summary>
[Collection("Cli")]
public class ShardedRunTests(ITestOutputHelper output)
{
    readonly ITestOutputHelper _out = output;

    /// <summary>7 synthetic 32×32 scenes; edges = their ground-truth boundaries (ternary PNGs, no model needed); masks = the ground truth as results.</summary>
    static TempDir MakeDataset()
    {
        var dir = new TempDir("diffegg-shards");
        string synth = Path.Combine(dir, "d");
        Assert.Equal(0, CliRun.Capture("synth", "--count", "7", "--size", "32", "--seed", "4", "--split", "test", "--out", synth).Code);
        string edges = Path.Combine(dir, "edges");
        Directory.CreateDirectory(edges);
        foreach (var png in Directory.GetFiles(Path.Combine(synth, "panoptic"), "*.png"))
        {
            var ids = PanopticFiles.ReadPng(png, out int w, out int h);
            var g = new byte[w * h];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int i = y * w + x;
                    bool b = (x + 1 < w && ids[i + 1] != ids[i]) || (x > 0 && ids[i - 1] != ids[i]) || (y + 1 < h && ids[i + w] != ids[i]) || (y > 0 && ids[i - w] != ids[i]);
                    g[i] = b ? (byte)255 : (byte)0;
                }
            ImageIO.WriteGrayPng(Path.Combine(edges, Path.GetFileNameWithoutExtension(png) + ".ternary.png"), g, w, h);
        }
        var gt = CocoFiles.ReadInstances(Path.Combine(synth, "instances.json"));
        CocoFiles.WriteResults(Path.Combine(dir, "masks.json"), gt.Annotations.Select((a, k) =>
            new CocoResult { ImageId = a.ImageId, CategoryId = a.CategoryId, Score = 0.5 + 0.01 * (k % 40), Segmentation = a.Segmentation }));
        return dir;
    }

    static string[] Refine(string dir, string outFile) => new[]
    {
        "refine", "--images", Path.Combine(dir, "d", "images"), "--image-info", Path.Combine(dir, "d", "instances.json"),
        "--edges", Path.Combine(dir, "edges"), "--masks", Path.Combine(dir, "masks.json"), "--out", outFile,
    };

    static string[] Panoptic(string dir, string outDir) => new[]
    {
        "panoptic", "--images", Path.Combine(dir, "d", "images"), "--edges", Path.Combine(dir, "edges"), "--semantic", Path.Combine(dir, "d", "semantic"),
        "--categories", Path.Combine(dir, "d", "panoptic.json"), "--out", outDir,
    };

    /// <summary>Starts the built CLI (DiffEgg.Cli.dll beside the tests) as its own process with only the given scheduler variables.</summary>
    static Process Start(IReadOnlyDictionary<string, string> env, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DiffEgg.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var v in ShardSpec.EnvironmentVariables) psi.Environment.Remove(v);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    (int Code, string Out, string Err) Run(IReadOnlyDictionary<string, string> env, params string[] args)
    {
        using var p = Start(env, args);
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        _out.WriteLine($"$ {string.Join(" ", env.Select(kv => $"{kv.Key}={kv.Value}"))} diffegg {string.Join(" ", args.Take(1))} … → {p.ExitCode}\n{so.Result}{se.Result}");
        return (p.ExitCode, so.Result, se.Result);
    }

    static Dictionary<string, string> Slurm(int id, int count) => new()
    {
        ["SLURM_ARRAY_TASK_ID"] = (id + 100).ToString(), ["SLURM_ARRAY_TASK_MIN"] = "100", ["SLURM_ARRAY_TASK_COUNT"] = count.ToString(),
    };

    static Dictionary<string, string> Kubernetes(int index, int count) => new()
    {
        ["JOB_COMPLETION_INDEX"] = index.ToString(), ["DIFFEGG_SHARD_COUNT"] = count.ToString(),
    };

    static void AssertSameTree(string expected, string actual)
    {
        var a = Directory.GetFiles(expected, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(expected, f)).Order(StringComparer.Ordinal).ToList();
        var b = Directory.GetFiles(actual, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(actual, f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(a, b);
        foreach (var f in a) Assert.True(File.ReadAllBytes(Path.Combine(expected, f)).SequenceEqual(File.ReadAllBytes(Path.Combine(actual, f))), f);
    }

    [Fact]
    public void SlurmAndKubernetesShardsMergeToTheBytesOfOneRun()
    {
        using var dir = MakeDataset();
        var none = new Dictionary<string, string>();
        string single = Path.Combine(dir, "single.json"), slurm = Path.Combine(dir, "slurm.json");
        Assert.Equal(0, Run(none, Refine(dir, single)).Code);
        for (int i = 0; i < 3; i++)
        {
            var r = Run(Slurm(i, 3), Refine(dir, slurm));
            Assert.Equal(0, r.Code);
            Assert.Contains($"shard {i + 1} of 3", r.Out);
            Assert.Contains("Slurm: SLURM_ARRAY_TASK_ID", r.Out);
        }
        Assert.False(File.Exists(slurm));   // shards never write OUT
        var m1 = ShardManifest.Read(Path.Combine(slurm + ".parts", "shard-1-of-3.json"));
        Assert.Equal((ShardLayout.Refine, 1, 3, 0), (m1.Command, m1.ShardIndex, m1.ShardCount, m1.Skipped));
        var (code, stdout, _) = Run(none, "merge", slurm);
        Assert.Equal(0, code);
        Assert.Contains("from 3 shard(s)", stdout);
        Assert.Equal(File.ReadAllBytes(single), File.ReadAllBytes(slurm));

        string pSingle = Path.Combine(dir, "p1"), pK8s = Path.Combine(dir, "pk");
        Assert.Equal(0, Run(none, Panoptic(dir, pSingle)).Code);
        for (int i = 0; i < 2; i++) Assert.Equal(0, Run(Kubernetes(i, 2), Panoptic(dir, pK8s)).Code);
        Assert.False(Directory.Exists(pK8s));
        Assert.Equal(0, Run(none, "merge", pK8s).Code);
        AssertSameTree(pSingle, pK8s);

        // the command line wins over the scheduler: --shard-count 1 inside an array job is one whole run
        string whole = Path.Combine(dir, "whole.json");
        Assert.Equal(0, Run(Slurm(2, 3), Refine(dir, whole).Concat(new[] { "--shard-count", "1" }).ToArray()).Code);
        Assert.Equal(File.ReadAllBytes(single), File.ReadAllBytes(whole));
        // two schedulers that disagree: one line, exit 1, nothing written
        var bad = Run(new Dictionary<string, string>(Slurm(0, 3)) { ["JOB_COMPLETION_INDEX"] = "1", ["DIFFEGG_SHARD_COUNT"] = "3" }, Refine(dir, Path.Combine(dir, "bad.json")));
        Assert.Equal(1, bad.Code);
        Assert.Contains("two schedulers disagree", bad.Err);
        Assert.Single(bad.Err.Trim().Split('\n'));
        Assert.StartsWith("error: ", bad.Err);
        CliRun.AssertNoStackTrace(bad.Err + bad.Out);
        Assert.False(Directory.Exists(Path.Combine(dir, "bad.json.parts")));
    }

    [Fact]
    public void AKilledShardResumesWhereItStoppedAndMergesToTheSameBytes()
    {
        using var dir = MakeDataset();
        var none = new Dictionary<string, string>();
        string single = Path.Combine(dir, "single.json"), sharded = Path.Combine(dir, "sharded.json");
        Assert.Equal(0, Run(none, Refine(dir, single)).Code);
        string parts = sharded + ".parts";
        // shard 0 of 2, killed (SIGKILL) as soon as its first part exists
        using (var p = Start(Kubernetes(0, 2), Refine(dir, sharded)))
        {
            var sw = Stopwatch.StartNew();
            while (!p.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2)
                   && !(Directory.Exists(parts) && Directory.EnumerateFiles(parts, "*.json").Any(f => !Path.GetFileName(f).StartsWith("shard-"))))
                Thread.Sleep(5);
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        File.WriteAllText(Path.Combine(parts, ".999.json.1.deadbeef.tmp"), "[{\"trunc");   // what a kill during a write leaves: ignored
        int before = Directory.EnumerateFiles(parts, "*.json").Count(f => !Path.GetFileName(f).StartsWith("shard-"));
        _out.WriteLine($"parts left by the killed shard: {before}");
        Assert.True(before >= 1);
        var again = Run(Kubernetes(0, 2), Refine(dir, sharded));
        Assert.Equal(0, again.Code);
        var m0 = ShardManifest.Read(Path.Combine(parts, "shard-0-of-2.json"));
        Assert.Equal(4, m0.Items.Count);                  // positions 0, 2, 4, 6 of the 7 images in id order
        Assert.Equal(Math.Min(before, 4), m0.Skipped);     // every part that existed was kept, the rest computed
        Assert.Equal(m0.Items.Count, m0.Done + m0.Skipped);
        var bytes = Directory.GetFiles(parts, "*.json").Where(f => !Path.GetFileName(f).StartsWith("shard-")).ToDictionary(f => f, File.ReadAllBytes);

        // merge before shard 1 has run: refused, naming the missing manifest; nothing written
        var early = Run(none, "merge", sharded);
        Assert.Equal(1, early.Code);
        Assert.Contains("shard-1-of-2.json", early.Err);
        Assert.Single(early.Err.Trim().Split('\n'));
        CliRun.AssertNoStackTrace(early.Err + early.Out);
        Assert.False(File.Exists(sharded));
        Assert.Equal(0, Run(Kubernetes(1, 2), Refine(dir, sharded)).Code);
        Assert.Equal(0, Run(none, "merge", sharded).Code);
        Assert.Equal(File.ReadAllBytes(single), File.ReadAllBytes(sharded));

        // a rerun of a finished shard skips everything and leaves its parts byte-identical; --overwrite recomputes them identically
        Assert.Equal(0, Run(Kubernetes(0, 2), Refine(dir, sharded)).Code);
        Assert.Equal(4, ShardManifest.Read(Path.Combine(parts, "shard-0-of-2.json")).Skipped);
        Assert.Equal(0, Run(Kubernetes(0, 2), Refine(dir, sharded).Append("--overwrite").ToArray()).Code);
        Assert.Equal(4, ShardManifest.Read(Path.Combine(parts, "shard-0-of-2.json")).Done);
        foreach (var (f, b) in bytes) Assert.True(b.SequenceEqual(File.ReadAllBytes(f)), f);
    }

    [Fact]
    public void UnshardedResumeSkipsExistingPartsAndWritesTheSameOutput()
    {
        using var dir = MakeDataset();
        string single = Path.Combine(dir, "single.json"), resumed = Path.Combine(dir, "resumed.json");
        Assert.Equal(0, CliRun.Capture(Refine(dir, single)).Code);
        Assert.Equal(0, CliRun.Capture(Refine(dir, resumed).Append("--resume").ToArray()).Code);
        Assert.Equal(File.ReadAllBytes(single), File.ReadAllBytes(resumed));
        // lose three parts and the output: the rerun computes exactly those three
        string parts = resumed + ".parts";
        foreach (var f in Directory.GetFiles(parts, "*.json").Where(f => !Path.GetFileName(f).StartsWith("shard-")).Order().Take(3)) File.Delete(f);
        File.Delete(resumed);
        var r = CliRun.Capture(Refine(dir, resumed).Append("--resume").ToArray());
        Assert.Equal(0, r.Code);
        var m = ShardManifest.Read(Path.Combine(parts, "shard-0-of-1.json"));
        Assert.Equal((3, 4), (m.Done, m.Skipped));
        Assert.Equal(File.ReadAllBytes(single), File.ReadAllBytes(resumed));

        // panoptic too
        string p1 = Path.Combine(dir, "p1"), p2 = Path.Combine(dir, "p2");
        Assert.Equal(0, CliRun.Capture(Panoptic(dir, p1)).Code);
        Assert.Equal(0, CliRun.Capture(Panoptic(dir, p2).Append("--resume").ToArray()).Code);
        AssertSameTree(p1, p2);
    }

    [Fact]
    public void MergeNamesMissingImagesAndFailuresAndAllowMissingMergesTheRest()
    {
        using var dir = MakeDataset();
        string sharded = Path.Combine(dir, "s.json");
        // the second image (id 1000002: synth's test split numbers from 1000001) is unreadable: shard 1 records the failure and exits 1
        string img2 = Directory.GetFiles(Path.Combine(dir, "d", "images")).Order(StringComparer.Ordinal).ElementAt(1);
        File.WriteAllText(img2, "not a png");
        Assert.Equal(0, CliRun.Capture(Refine(dir, sharded).Concat(new[] { "--shard-index", "0", "--shard-count", "2" }).ToArray()).Code);
        CliRun.Fails(1, Refine(dir, sharded).Concat(new[] { "--shard-index", "1", "--shard-count", "2" }).ToArray(), new[] { img2, sharded + ".parts" }, new[] { sharded }, errors: 2);
        var m1 = ShardManifest.Read(Path.Combine(sharded + ".parts", "shard-1-of-2.json"));
        var f = Assert.Single(m1.Failed);
        Assert.Equal("1000002", f.Item);
        var merge = CliRun.Fails(1, new[] { "merge", sharded }, new[] { "1000002" }, new[] { sharded });
        Assert.Contains("1 item(s) without a part: 1000002 (failed in shard 1:", merge.Err);
        Assert.False(File.Exists(sharded));
        var allow = CliRun.Capture("merge", sharded, "--allow-missing");
        Assert.Equal(0, allow.Code);
        Assert.Contains("left out 1000002", allow.Err);
        var gt = new CocoDataset { Images = DiffEgg.Formats.CocoMetadataFiles.ReadImageInfo(Path.Combine(dir, "d", "instances.json")) };
        var merged = CocoFiles.ReadResults(sharded, gt);
        Assert.DoesNotContain(merged, x => x.ImageId == 1000002);
        Assert.Equal(merged.Select(x => x.ImageId).Order(), merged.Select(x => x.ImageId));   // sorted by image id
        // stale manifests of another shard count are refused by name
        new ShardManifest { Command = ShardLayout.Refine, ShardIndex = 0, ShardCount = 3, Source = "test", Items = Array.Empty<string>() }
            .Write(Path.Combine(sharded + ".parts", "shard-0-of-3.json"));
        var mixed = CliRun.Fails(1, new[] { "merge", sharded }, new[] { "shard-0-of-3.json" });
        Assert.Contains("different shard counts (2, 3)", mixed.Err);
        CliRun.Fails(1, new[] { "merge", Path.Combine(dir, "nothing.json") }, new[] { Path.Combine(dir, "nothing.json") }, new[] { Path.Combine(dir, "nothing.json") });
    }

    [Fact]
    public void AShardWithNoImagesStillWritesItsManifestAndNeverTheOutput()
    {
        using var dir = MakeDataset();   // 7 images: shards 7..9 of 10 get none
        string sharded = Path.Combine(dir, "s.json");
        var r = CliRun.Capture(Refine(dir, sharded).Concat(new[] { "--shard-index", "8", "--shard-count", "10" }).ToArray());
        Assert.Equal(0, r.Code);
        var m = ShardManifest.Read(Path.Combine(sharded + ".parts", "shard-8-of-10.json"));
        Assert.Equal((0, 0, 0), (m.Items.Count, m.Done, m.Skipped));
        Assert.False(File.Exists(sharded));
        string pan = Path.Combine(dir, "p");
        Assert.Equal(0, CliRun.Capture(Panoptic(dir, pan).Concat(new[] { "--shard-index", "9", "--shard-count", "10" }).ToArray()).Code);
        Assert.Empty(ShardManifest.Read(Path.Combine(pan + ".parts", "shard-9-of-10.json")).Items);
        Assert.False(Directory.Exists(pan));
    }

    [Fact]
    public void EdgesShardsWriteTheSameFilesAsOneRunAndSkipWhatExists()
    {
        using var model = DiffEgg.Tests.FineTuning.FineTuneTestUtil.TinyModel();
        using var dir = MakeDataset();
        string images = Path.Combine(dir, "d", "images");
        string one = Path.Combine(dir, "e1"), sharded = Path.Combine(dir, "e2");
        Assert.Equal(0, CliRun.Capture("edges", "--model", model, "--input", images, "--out", one, "--timesteps", "10").Code);
        for (int i = 0; i < 2; i++)
            Assert.Equal(0, CliRun.Capture("edges", "--model", model, "--input", images, "--out", sharded, "--timesteps", "10", "--shard-index", i.ToString(), "--shard-count", "2").Code);
        var merge = CliRun.Capture("merge", sharded);
        Assert.Equal(0, merge.Code);
        Assert.Contains("edges need no merge", merge.Out);
        // the per-image JSON names the input image and model (same paths here), so the whole folders are equal byte for byte
        Assert.Equal(Directory.GetFiles(one).Select(Path.GetFileName).Order(), Directory.GetFiles(sharded).Select(Path.GetFileName).Order());
        foreach (var file in Directory.GetFiles(one)) Assert.True(File.ReadAllBytes(file).SequenceEqual(File.ReadAllBytes(Path.Combine(sharded, Path.GetFileName(file)))), file);
        // a lost image is recomputed, the others skipped
        foreach (var file in Directory.GetFiles(sharded, "test_000002.*")) File.Delete(file);
        var again = CliRun.Capture("edges", "--model", model, "--input", images, "--out", sharded, "--timesteps", "10", "--shard-index", "0", "--shard-count", "2");
        Assert.Equal(0, again.Code);
        var m = ShardManifest.Read(Path.Combine(sharded + ".parts", "shard-0-of-2.json"));
        Assert.Equal((1, 3), (m.Done, m.Skipped));
        foreach (var file in Directory.GetFiles(one, "test_000002.*")) Assert.True(File.ReadAllBytes(file).SequenceEqual(File.ReadAllBytes(Path.Combine(sharded, Path.GetFileName(file)))), file);
    }
}
