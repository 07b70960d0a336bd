using DiffEgg.Tests.Cli;
using System.Text.Json;
using DiffEgg.Cli;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Data.Synthetic;
using DiffEgg.FineTuning;
using DiffEgg.FineTuning.Lora;
using DiffEgg.Models;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Refinement;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffEgg.Tests.FineTuning;

[Collection("Cli")]
public class FinetuneCliTests
{
    readonly ITestOutputHelper _out;
    public FinetuneCliTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    (int Rc, string Err) Cli(params string[] args)
    {
        var err = new StringWriter();
        var old = Console.Error;
        int rc;
        try { Console.SetError(err); rc = DiffEggApp.Run(args); }
        finally { Console.SetError(old); }
        _out.WriteLine($"diffegg {string.Join(' ', args)} → {rc} {err}");
        return (rc, err.ToString());
    }

    [Fact]
    public void FinetuneThenOneStepEdgesWriteTheSameFilesAsEdges()
    {
        using var model = FineTuneTestUtil.TinyModel();
        using var dataSet = FineTuneTestUtil.MakeSet(2, 16);
        var (data, edges) = dataSet;
        using var root = new TempDir("diffegg-ft-cli");
        string adapter = Path.Combine(root, "adapter"), pseudo = Path.Combine(root, "pseudo"), one = Path.Combine(root, "one");

        var (rc, _) = Cli("finetune", "--model", model, "--data", data, "--edges", edges, "--out", adapter, "--steps", "3", "--batch", "2",
            "--size", "16", "--threads", "1", "--fpn-channels", "8", "--checkpoint-every", "2");
        Assert.Equal(0, rc);
        foreach (var f in new[] { LoraFile.FileName, EdgeAdapter.GeneratorFile, EdgeAdapter.ConfigFile, "training/loss.csv", "training/loss.png" })
            Assert.True(File.Exists(Path.Combine(adapter, f)), f);
        Assert.Equal("step,loss,lr,seconds,dice,rec", File.ReadLines(Path.Combine(adapter, "training", "loss.csv")).First());
        using (var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, EdgeAdapter.ConfigFile))))
        {
            Assert.Equal(EdgeAdapter.ClassName, cfg.RootElement.GetProperty("_class_name").GetString());
            Assert.Equal(0, cfg.RootElement.GetProperty("timestep").GetInt32());
            Assert.Equal("3", cfg.RootElement.GetProperty("training").GetProperty("steps_done").GetString());
        }
        using (var st = SafeTensorsFile.Open(Path.Combine(adapter, LoraFile.FileName)))
            Assert.All(st.Keys, k => Assert.Equal(SafeTensorsDType.F16, st.Info(k).DType));   // shipped as fp16 by default

        // training-free and one-step edges on the same images: same file set, same sizes, JSON names the method
        Assert.Equal(0, Cli("edges", "--model", model, "--input", Path.Combine(data, "images"), "--out", pseudo, "--timesteps", "100,10").Rc);
        Assert.Equal(0, Cli("edges", "--model", model, "--adapter", adapter, "--input", Path.Combine(data, "images"), "--out", one).Rc);
        Assert.Equal(Directory.GetFiles(pseudo).Select(Path.GetFileName).OrderBy(x => x), Directory.GetFiles(one).Select(Path.GetFileName).OrderBy(x => x));
        foreach (var stem in new[] { "s000", "s001" })
        {
            using var jp = JsonDocument.Parse(File.ReadAllText(Path.Combine(pseudo, stem + ".json")));
            using var jo = JsonDocument.Parse(File.ReadAllText(Path.Combine(one, stem + ".json")));
            Assert.Equal("peakkl-edgekl", jp.RootElement.GetProperty("method").GetString());
            Assert.Equal("one-step", jo.RootElement.GetProperty("method").GetString());
            Assert.Equal(adapter, jo.RootElement.GetProperty("adapter").GetString());
            using var f = SafeTensorsFile.Open(Path.Combine(one, stem + ".edges.safetensors"));
            using var map = f.Read("edges");
            Assert.Equal(new long[] { 16, 16 }, map.shape);
            Assert.True(map.min().item<float>() >= 0 && map.max().item<float>() <= 1);
            var png = ImageIO.ReadGray(Path.Combine(one, stem + ".ternary.png"), out int w, out int h, out _);
            Assert.Equal((16, 16), (w, h));
            Assert.All(png, v => Assert.Contains(v, new byte[] { 0, 255 }));
            // the ternary PNG is the one-pixel skeleton of the float map's 0.5 threshold
            var values = map.data<float>().ToArray();
            var skeleton = DiffEgg.Edges.Thinning.ZhangSuen(values.Select(v => v >= 0.5f).ToArray(), 16, 16);
            for (int i = 0; i < values.Length; i++) Assert.Equal(skeleton[i] ? 255 : 0, png[i]);
            // refine / panoptic / demo read it like any edges output
            var (path, em) = EdgeMapReader.Load(one, stem, EdgeScale.Ternary);
            Assert.EndsWith(".ternary.png", path);
            Assert.Equal((16, 16), (em.Width, em.Height));
        }
        // both images went through the UNet in one batched pass; one image per pass writes the same maps (≤ 1e-5) and skeletons
        string one1 = Path.Combine(root, "one-b1");
        Assert.Equal(0, Cli("edges", "--model", model, "--adapter", adapter, "--input", Path.Combine(data, "images"), "--out", one1, "--batch", "1").Rc);
        foreach (var stem in new[] { "s000", "s001" })
        {
            using var fa = SafeTensorsFile.Open(Path.Combine(one, stem + ".edges.safetensors"));
            using var fb = SafeTensorsFile.Open(Path.Combine(one1, stem + ".edges.safetensors"));
            using var a = fa.Read("edges");
            using var b = fb.Read("edges");
            double d = (a - b).abs().max().item<float>();
            _out.WriteLine($"{stem}: batch of 2 vs batch 1: max |Δ| = {d:E2}");
            Assert.True(d <= 1e-5, $"{d}");
            Assert.Equal(File.ReadAllBytes(Path.Combine(one, stem + ".ternary.png")), File.ReadAllBytes(Path.Combine(one1, stem + ".ternary.png")));
        }
        CliRun.Fails(2, new[] { "edges", "--model", model, "--input", Path.Combine(data, "images"), "--out", one1, "--batch", "2" }, new[] { "--batch" });   // no adapter
        CliRun.Fails(2, new[] { "edges", "--model", model, "--adapter", adapter, "--input", Path.Combine(data, "images"), "--out", one1, "--batch", "0" }, new[] { "--batch" });

        // the one-step pipeline reproduces the adapter's edges when loaded in-process (merge vs side path, ≤ 1e-5)
        using (var m = DiffusionModelFolder.Load(model))
        using (var a = EdgeAdapter.Load(adapter, m.Unet))
        using (var p = new OneStepEdgePipeline(m, a, new DiffEgg.Edges.EdgePipelineOptions { Size = a.Size ?? m.Unet.Config.SampleSize }))   // the CLI default: the adapter's size
        using (var r = p.Run(ImageIO.ReadRgb(Path.Combine(data, "images", "s000.png"))))
        using (var f = SafeTensorsFile.Open(Path.Combine(one, "s000.edges.safetensors")))
        using (var written = f.Read("edges"))
        {
            double d = (r.Edges - written).abs().max().item<float>();
            _out.WriteLine($"one-step edges, CLI (LoRA merged) vs in-process (side path): max |Δ| = {d:E2}");
            Assert.True(d <= 1e-5, $"{d}");
        }

        // a second finetune into the same folder without --resume is refused; --resume with more steps continues
        CliRun.Fails(1, new[] { "finetune", "--model", model, "--data", data, "--edges", edges, "--out", adapter, "--steps", "4", "--batch", "2",
            "--size", "16", "--threads", "1", "--fpn-channels", "8" });
        Assert.Equal(0, Cli("finetune", "--model", model, "--data", data, "--edges", edges, "--out", adapter, "--steps", "4", "--batch", "2",
            "--size", "16", "--threads", "1", "--fpn-channels", "8", "--resume").Rc);
        Assert.Equal(4, File.ReadLines(Path.Combine(adapter, "training", "loss.csv")).Count() - 1);
    }

    /// <summary>A one-step fine-tuning run (batch 1, one thread, FPN width 8) into ROOT/adapter; returns the adapter folder.</summary>
    string TrainOneStep(string model, string data, string edges, string root, params string[] extra)
    {
        string adapter = Path.Combine(root, "adapter");
        Assert.Equal(0, Cli(new[] { "finetune", "--model", model, "--data", data, "--edges", edges, "--out", adapter, "--steps", "1", "--batch", "1",
            "--threads", "1", "--fpn-channels", "8" }.Concat(extra).ToArray()).Rc);
        return adapter;
    }

    [Fact]
    public void AdapterRecordsItsTrainingSizeAndOneStepEdgesProcessAtIt()
    {
        using var model = FineTuneTestUtil.TinyModel();
        using var dataSet = FineTuneTestUtil.MakeSet(1, 16);
        var (data, edges) = dataSet;
        using var root = new TempDir("diffegg-ft-size");
        string adapter = TrainOneStep(model, data, edges, root, "--size", "8", "--edge-threshold", "0.7");
        string cfgPath = Path.Combine(adapter, EdgeAdapter.ConfigFile);
        using (var cfg = JsonDocument.Parse(File.ReadAllText(cfgPath)))
        {
            Assert.Equal(8, cfg.RootElement.GetProperty("size").GetInt32());
            Assert.Equal(0.7, cfg.RootElement.GetProperty("edge_threshold").GetDouble());
        }
        CliRun.Fails(1, new[] { "finetune", "--model", model, "--data", data, "--edges", edges, "--out", Path.Combine(root, "x"), "--steps", "1",
            "--edge-threshold", "1" }, new[] { "--edge-threshold" });
        int Processed(string outDir)
        {
            using var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "s000.json")));
            Assert.Equal(16, j.RootElement.GetProperty("width").GetInt32());   // the maps are written at the image size either way
            return j.RootElement.GetProperty("processed_width").GetInt32();
        }
        // without --size the one-step pass runs at the adapter's size, --size overrides it
        string byAdapter = Path.Combine(root, "a"), bySize = Path.Combine(root, "b");
        Assert.Equal(0, Cli("edges", "--model", model, "--adapter", adapter, "--input", Path.Combine(data, "images"), "--out", byAdapter).Rc);
        Assert.Equal(8, Processed(byAdapter));
        Assert.Equal(0, Cli("edges", "--model", model, "--adapter", adapter, "--size", "16", "--input", Path.Combine(data, "images"), "--out", bySize).Rc);
        Assert.Equal(16, Processed(bySize));
        // the key is validated like the others
        File.WriteAllText(cfgPath, File.ReadAllText(cfgPath).Replace("\"size\": 8", "\"size\": 4"));
        CliRun.Fails(1, new[] { "edges", "--model", model, "--adapter", adapter, "--input", Path.Combine(data, "images"), "--out", Path.Combine(root, "c") },
            new[] { cfgPath, "'size'" }, new[] { Path.Combine(root, "c") });
    }

    [Fact]
    public void ShippedFastAdapterRunsAtItsTrainingSize()
    {
        // models/embedded/edge-adapter-fast: trained at 32 px (config.json size 32, threshold 0.7); a 64-px image is processed at 32×32
        string adapter = Path.Combine(EmbeddedModel.DefaultPath, "edge-adapter-fast");
        using var root = new TempDir("diffegg-fast-adapter");
        string images = Path.Combine(root, "images"), outDir = Path.Combine(root, "out");
        Directory.CreateDirectory(images);
        var scene = new SceneGenerator(new SceneOptions()).Generate(0, SyntheticSplit.Test, 0);
        ImageIO.WriteRgbPng(Path.Combine(images, "s.png"), scene.Image);
        Assert.Equal(0, Cli("edges", "--adapter", adapter, "--input", images, "--out", outDir).Rc);
        using var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "s.json")));
        Assert.Equal(64, j.RootElement.GetProperty("width").GetInt32());
        Assert.Equal(32, j.RootElement.GetProperty("processed_width").GetInt32());
        Assert.Equal(0.7, j.RootElement.GetProperty("edge_threshold").GetDouble());
        var png = ImageIO.ReadGray(Path.Combine(outDir, "s.ternary.png"), out int w, out int h, out _);
        Assert.Equal((64, 64), (w, h));
        Assert.Contains(png, v => v == 255);   // a scene with objects has edges
    }

    [Fact]
    public void BadAdapterFolderIsOneLineNamingFileKeyAndShape()
    {
        using var model = FineTuneTestUtil.TinyModel();
        using var dataSet = FineTuneTestUtil.MakeSet(1, 16);
        var (data, edges) = dataSet;
        using var root = new TempDir("diffegg-ft-bad-adapter");
        string adapter = TrainOneStep(model, data, edges, root, "--size", "16");
        string gen = Path.Combine(adapter, EdgeAdapter.GeneratorFile);
        var good = File.ReadAllBytes(gen);
        var tensors = new Dictionary<string, Tensor>();
        using (var f = SafeTensorsFile.Open(gen))
            foreach (var k in f.Keys) tensors[k] = k == "classifier.weight" ? torch.zeros(1, 4, 1, 1) : f.Read(k);
        SafeTensorsWriter.Save(gen, tensors);
        foreach (var t in tensors.Values) t.Dispose();
        string err = CliRun.Fails(1, new[] { "edges", "--model", model, "--adapter", adapter, "--input", Path.Combine(data, "images"), "--out", Path.Combine(root, "o") },
            new[] { gen, "classifier.weight", "[1,4,1,1]" }, new[] { Path.Combine(root, "o") }).Err;
        Assert.Contains(gen, err);
        Assert.Contains("classifier.weight", err);
        Assert.Contains("[1,4,1,1]", err);
        Assert.Single(err.Trim().Split('\n'));
        File.WriteAllBytes(gen, good);
        // an adapter made for another model: the config names the mismatch
        string err2 = CliRun.Fails(1, new[] { "edges", "--model", TestPaths.Sd15Tiny, "--adapter", adapter, "--input", Path.Combine(data, "images"), "--out", Path.Combine(root, "o") },
            new[] { "config.json", "in_channels" }, new[] { Path.Combine(root, "o") }).Err;
        Assert.Contains("config.json", err2);
        Assert.Contains("in_channels", err2);
        CliRun.Fails(2, new[] { "edges", "--model", model, "--adapter", adapter, "--fixed-timestep", "10", "--input", data, "--out", Path.Combine(root, "o") }, new[] { "--fixed-timestep" });
        CliRun.Fails(1, new[] { "edges", "--model", model, "--adapter", Path.Combine(root, "nothing"), "--input", Path.Combine(data, "images"), "--out", Path.Combine(root, "o") }, new[] { Path.Combine(root, "nothing") });
    }

    [Fact]
    public void LatentModelFineTunesInImageAndLatentSpaceAndBenchScoresTheAdapter()
    {
        // the sd15-tiny fixture (VAE ×2, UNet ×8): 32-px images
        using var dataSet = FineTuneTestUtil.MakeSet(2, 32);
        var (data, edges) = dataSet;
        using var root = new TempDir("diffegg-ft-latent");
        foreach (var space in new[] { "image", "latent" })
        {
            var r = FineTuneTrainer.Run(new FineTuneOptions
            {
                ModelDir = TestPaths.Sd15Tiny, DataDir = data, EdgesDir = edges, OutDir = Path.Combine(root, space), Steps = 2, Batch = 2,
                Size = 32, Threads = 1, FpnChannels = 8, RecSpace = space, Fp16 = false,
            });
            _out.WriteLine($"{space}: losses {string.Join(", ", r.Log.Rows.Select(x => $"{x.Loss:F4} (rec {x.Extra![1]:E2})"))}");
            Assert.Equal(2, r.StepsDone);
            Assert.All(r.Log.Rows, x => Assert.True(double.IsFinite(x.Loss) && x.Extra![1] > 0));
        }
        using var model = DiffusionModelFolder.Load(TestPaths.Sd15Tiny);
        using var adapter = EdgeAdapter.Load(Path.Combine(root, "image"), model.Unet);
        using var p = new OneStepEdgePipeline(model, adapter, new DiffEgg.Edges.EdgePipelineOptions { Size = 32 });
        using var res = p.Run(ImageIO.ReadRgb(Path.Combine(data, "images", "s000.png")));
        Assert.Equal(new long[] { 32, 32 }, res.Edges.shape);
        Assert.Equal((32, 32), (res.ProcessedWidth, res.ProcessedHeight));

        // bench-edges --adapter adds the one-step row next to the training-free ones (a synth folder, the tiny pixel model)
        using var tiny = FineTuneTestUtil.TinyModel();
        string synth = Path.Combine(root, "synth");
        Assert.Equal(0, Cli("synth", "--count", "2", "--size", "32", "--seed", "1", "--split", "test", "--out", synth).Rc);
        Assert.Equal(0, Cli("edges", "--model", tiny, "--input", Path.Combine(synth, "images"), "--out", Path.Combine(root, "se"), "--timesteps", "10").Rc);
        var synthEdges = Path.Combine(root, "se");
        foreach (var f in Directory.GetFiles(synthEdges, "*.ternary.png"))   // give the random model's maps an interior class
        {
            var g = ImageIO.ReadGray(f, out int w, out int h, out _);
            ImageIO.WriteGrayPng(f, g.Select(v => v == 128 ? (byte)0 : v).ToArray(), w, h);
        }
        string ad = Path.Combine(root, "tiny-adapter");
        Assert.Equal(0, Cli("finetune", "--model", tiny, "--data", synth, "--edges", synthEdges, "--out", ad, "--steps", "1", "--batch", "1",
            "--size", "32", "--threads", "1", "--fpn-channels", "8").Rc);
        string json = Path.Combine(root, "bench.json");
        var old = Console.Out;
        var sw = new StringWriter();
        int rc;
        try { Console.SetOut(sw); rc = DiffEggApp.Run(new[] { "bench-edges", "--data", synth, "--model", tiny, "--adapter", ad, "--timesteps", "10", "--fixed-timesteps", "none", "--metrics", "kl", "--json", json }); }
        finally { Console.SetOut(old); }
        _out.WriteLine(sw.ToString());
        Assert.Equal(0, rc);
        Assert.Contains("| DiffEGG one-step (adapter) | 2 |", sw.ToString());
        Assert.Contains("| DiffEGG one-step skeleton (written) | 2 |", sw.ToString());
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Contains(doc.RootElement.GetProperty("rows").EnumerateArray(), r => r.GetProperty("method").GetString() == "DiffEGG one-step (adapter)");
    }
}
