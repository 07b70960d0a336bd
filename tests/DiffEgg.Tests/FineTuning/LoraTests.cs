using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.FineTuning.Lora;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.UNet;
using DiffEgg.Training;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffEgg.Tests.FineTuning;

public class LoraTests
{
    readonly ITestOutputHelper _out;
    public LoraTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    static UNet2DConditionModel Fixture() => UNet2DConditionModel.FromFolder(TestPaths.Fixture("unet"));

    /// <summary>A fixed fixture input: latents [2, 4, 16, 16], timesteps, text states [2, 77, 32].</summary>
    static (Tensor X, Tensor T, Tensor C) Input()
    {
        using var g = new torch.Generator(11);
        return (torch.randn(new long[] { 2, 4, 16, 16 }, generator: g), torch.tensor(new long[] { 10, 700 }), torch.randn(new long[] { 2, 77, 32 }, generator: g));
    }

    static Tensor Run(UNet2DConditionModel unet, (Tensor X, Tensor T, Tensor C) i)
    {
        using var _ = torch.no_grad();
        return unet.forward(i.X, i.T, i.C);
    }

    static double MaxDiff(Tensor a, Tensor b) { using var d = (a - b).abs().max(); return d.item<float>(); }

    /// <summary>Gives every layer non-zero A and B (as after training).</summary>
    static void Randomise(UNetLora lora, ulong seed, double scale = 0.05)
    {
        using var g = new torch.Generator(seed);
        using var _ = torch.no_grad();
        foreach (var l in lora.Layers)
        {
            using var a = torch.randn(l.A.shape, generator: g) * scale;
            using var b = torch.randn(l.B.shape, generator: g) * scale;
            l.A.copy_(a);
            l.B.copy_(b);
        }
    }

    [Fact]
    public void FreshAdapterLeavesTheUNetOutputUnchanged()
    {
        using var unet = Fixture();
        var input = Input();
        using var before = Run(unet, input);
        using (var lora = UNetLora.Attach(unet, new LoraOptions { Targets = LoraTargets.Attention | LoraTargets.Projections | LoraTargets.FeedForward }))
        {
            // 16 transformer blocks: 8 attention projections, proj_in/proj_out per Transformer2DModel, ff.net.0.proj and ff.net.2
            Assert.Equal(16 * 8 + 16 * 2 + 16 * 2, lora.Layers.Count);
            using var with = Run(unet, input);
            double d = MaxDiff(before, with);
            _out.WriteLine($"fresh adapter: max |Δ| = {d:E2}");
            Assert.True(d <= 1e-6, $"fresh adapter changed the output by {d}");
            // not vacuous: the same layers with non-zero B change it
            Randomise(lora, 5);
            using var changed = Run(unet, input);
            Assert.True(MaxDiff(before, changed) > 1e-3);
        }
        // detached: back to the base model exactly
        using var after = Run(unet, input);
        Assert.Equal(0, MaxDiff(before, after));
    }

    [Fact]
    public void DefaultRankIsMin64AndHalfTheNarrowerSide()
    {
        Assert.Equal(32, UNetLora.DefaultRank(64, 64));
        Assert.Equal(16, UNetLora.DefaultRank(32, 64));
        Assert.Equal(64, UNetLora.DefaultRank(320, 320));
        Assert.Equal(64, UNetLora.DefaultRank(768, 1280));
        Assert.Equal(1, UNetLora.DefaultRank(3, 3));
        // on the embedded model's configuration: 64-wide attention → 32, its 32-wide context projections → 16
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Small, 0);
        using var lora = UNetLora.Attach(unet, new LoraOptions());
        var byName = lora.Layers.ToDictionary(l => l.Path);
        Assert.Equal(32, byName["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"].Rank);
        Assert.Equal(16, byName["down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"].Rank);
        Assert.Equal(32, byName["up_blocks.0.attentions.1.transformer_blocks.0.attn2.to_out.0"].Rank);
        Assert.All(lora.Layers, l => Assert.Equal(l.Rank, l.Alpha));   // default alpha = rank: scale 1
    }

    [Fact]
    public void ExplicitRankTooLargeForALayerIsAnErrorNamingTheLayer()
    {
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Small, 0);
        var e = Assert.Throws<InvalidOptionException>(() => UNetLora.Attach(unet, new LoraOptions { Rank = 40 }));   // bad input, not a bug
        _out.WriteLine(e.Message);
        Assert.Equal(nameof(LoraOptions.Rank), e.Option);   // the library's option; the CLI reports it as --rank
        Assert.StartsWith("40 is too large", e.Problem);
        Assert.Contains("attn2.to_k", e.Message);                 // 32 → 64: at most 32
        Assert.Contains("min(in, out) = 32", e.Message);
        using var ok = UNetLora.Attach(unet, new LoraOptions { Rank = 32 });   // the largest rank every layer allows
        Assert.All(ok.Layers, l => Assert.Equal(32, l.Rank));
    }

    [Fact]
    public void MergedAndUnmergedGiveTheSameOutput()
    {
        using var unet = Fixture();
        var input = Input();
        using var baseOut = Run(unet, input);
        using var weight0 = unet.state_dict()["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"].clone();
        using var lora = UNetLora.Attach(unet, new LoraOptions { Rank = 4, Alpha = 8, Targets = LoraTargets.Attention | LoraTargets.Projections });
        Randomise(lora, 9);
        using var unmerged = Run(unet, input);
        Assert.True(MaxDiff(baseOut, unmerged) > 1e-3, "the adapter must change the output for this test to mean anything");
        lora.Merge();
        using var merged = Run(unet, input);
        double d = MaxDiff(merged, unmerged);
        _out.WriteLine($"merged vs unmerged: max |Δ| = {d:E2}");
        Assert.True(d <= 1e-5, $"merged vs unmerged differ by {d}");
        lora.Unmerge();
        using var again = Run(unet, input);
        Assert.True(MaxDiff(again, unmerged) <= 1e-5);
        Assert.True(MaxDiff(unet.state_dict()["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"], weight0) <= 1e-6);
    }

    [Fact]
    public void ExportImportRoundTripIsExactWithDiffusersKeysAndMetadata()
    {
        using var dir = new TempDir();
        string path = dir.File(LoraFile.FileName);
        var input = Input();
        using var unet = Fixture();
        Tensor expected;
        List<(string Path, int Rank, double Alpha)> layers;
        using (var lora = UNetLora.Attach(unet, new LoraOptions { Rank = 4, Alpha = 2, Dropout = 0.1, Targets = LoraTargets.Attention | LoraTargets.Projections }))
        {
            Randomise(lora, 3);
            expected = Run(unet, input);
            layers = lora.Layers.Select(l => (l.Path, l.Rank, l.Alpha)).ToList();
            LoraFile.Save(path, lora, SafeTensorsDType.F32);
        }
        using var expectedOwner = expected;
        using (var f = SafeTensorsFile.Open(path))
        {
            Assert.Contains("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight", f.Keys);
            Assert.Contains("unet.up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_out.0.lora_B.weight", f.Keys);
            Assert.Contains("unet.mid_block.attentions.0.proj_in.lora_A.weight", f.Keys);
            Assert.Equal(new long[] { 4, 32 }, f.Info("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight").Shape);
            Assert.Equal(new long[] { 32, 4, 1, 1 }, f.Info("unet.mid_block.attentions.0.proj_out.lora_B.weight").Shape);   // 1×1 conv proj_out
            Assert.Equal(2 * layers.Count, f.Keys.Count);
            Assert.Equal("pt", f.Metadata["format"]);
            using var meta = JsonDocument.Parse(f.Metadata[LoraFile.MetadataKey]);
            var m = meta.RootElement;
            Assert.Equal(4, m.GetProperty("unet.r").GetInt32());
            Assert.Equal(2, m.GetProperty("unet.lora_alpha").GetDouble());
            Assert.Equal(0.1, m.GetProperty("unet.lora_dropout").GetDouble());
            Assert.Equal(layers.Select(l => l.Path), m.GetProperty("unet.target_modules").EnumerateArray().Select(e => e.GetString()));
            Assert.Empty(m.GetProperty("unet.rank_pattern").EnumerateObject());
            Assert.False(m.GetProperty("unet.use_dora").GetBoolean());
            // keys sorted as diffusers writes them (json.dumps(sort_keys=True))
            var names = m.EnumerateObject().Select(p => p.Name).ToList();
            Assert.Equal(names.OrderBy(n => n, StringComparer.Ordinal), names);
        }
        using var fresh = Fixture();
        using var loaded = LoraFile.Load(path, fresh);
        Assert.Equal(layers, loaded.Layers.Select(l => (l.Path, l.Rank, l.Alpha)).ToList());
        using var got = Run(fresh, input);
        Assert.Equal(0, MaxDiff(expected, got));
    }

    [Fact]
    public void PerLayerRanksAndAlphasSurviveTheRoundTrip()
    {
        using var dir = new TempDir();
        string path = dir.File(LoraFile.FileName);
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Small, 0);
        List<(string, int, double)> layers;
        using (var lora = UNetLora.Attach(unet, new LoraOptions()))   // ranks 32 and 16, alpha = rank
        {
            Randomise(lora, 4);
            layers = lora.Layers.Select(l => (l.Path, l.Rank, l.Alpha)).ToList();
            LoraFile.Save(path, lora);
        }
        using (var f = SafeTensorsFile.Open(path))
        {
            using var meta = JsonDocument.Parse(f.Metadata[LoraFile.MetadataKey]);
            var m = meta.RootElement;
            Assert.Equal(32, m.GetProperty("unet.r").GetInt32());
            Assert.Equal(16, m.GetProperty("unet.rank_pattern").GetProperty("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k").GetInt32());
            Assert.Equal(16, m.GetProperty("unet.alpha_pattern").GetProperty("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v").GetDouble());
        }
        using var fresh = BaseModelTrainer.CreateModel(BaseModelConfigs.Small, 0);
        using var loaded = LoraFile.Load(path, fresh);
        Assert.Equal(layers, loaded.Layers.Select(l => (l.Path, l.Rank, l.Alpha)).ToList());
    }

    [Fact]
    public void OlderLoraDownUpNamingIsRead()
    {
        using var dir = new TempDir();
        using var unet = Fixture();
        var input = Input();
        var tensors = new Dictionary<string, Tensor>();
        Tensor expected;
        using (var lora = UNetLora.Attach(unet, new LoraOptions { Rank = 2 }))   // alpha = rank: what a file without metadata means
        {
            Randomise(lora, 6);
            expected = Run(unet, input);
            foreach (var l in lora.Layers)
            {
                tensors[$"unet.{l.Path}.lora.down.weight"] = l.A.detach().clone();
                tensors[$"unet.{l.Path}.lora.up.weight"] = l.B.detach().clone();
            }
            SafeTensorsWriter.Save(dir.File("old.safetensors"), tensors);
        }
        using var fresh = Fixture();
        using var loaded = LoraFile.Load(dir.File("old.safetensors"), fresh);
        Assert.All(loaded.Layers, l => Assert.Equal(1.0, l.Scaling));
        using var got = Run(fresh, input);
        Assert.Equal(0, MaxDiff(expected, got));
        expected.Dispose();
        foreach (var t in tensors.Values) t.Dispose();
    }

    static string Key(string path, string part) => $"unet.{path}.{part}.weight";

    [Fact]
    public void CorruptOrMismatchedLoraFilesAreOneClearErrorNamingKeyAndShape()
    {
        using var dir = new TempDir();
        using var unet = Fixture();
        const string q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
        string Write(string name, Dictionary<string, Tensor> t, Dictionary<string, string>? meta = null)
        {
            string p = dir.File(name);
            SafeTensorsWriter.Save(p, t, metadata: meta);
            foreach (var x in t.Values) x.Dispose();
            return p;
        }
        DiffEggException Fails(string p)
        {
            var e = Assert.Throws<DiffEggException>(() => LoraFile.Load(p, unet));
            _out.WriteLine(e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.StartsWith(p, e.Message);
            return e;
        }

        var e1 = Fails(Write("in.safetensors", new() { [Key(q, "lora_A")] = torch.zeros(4, 48), [Key(q, "lora_B")] = torch.zeros(32, 4) }));
        Assert.Contains(Key(q, "lora_A"), e1.Message);
        Assert.Contains("[4,48]", e1.Message);
        Assert.Contains("[r, 32]", e1.Message);

        var e2 = Fails(Write("out.safetensors", new() { [Key(q, "lora_A")] = torch.zeros(4, 32), [Key(q, "lora_B")] = torch.zeros(32, 3) }));
        Assert.Contains(Key(q, "lora_B"), e2.Message);
        Assert.Contains("[32,3]", e2.Message);

        var e3 = Fails(Write("missing.safetensors", new() { [Key(q, "lora_A")] = torch.zeros(4, 32) }));
        Assert.Contains(Key(q, "lora_B"), e3.Message);
        Assert.Contains("not found", e3.Message);

        var e4 = Fails(Write("unknown.safetensors", new() { ["unet.down_blocks.0.resnets.0.conv1.lora_A.weight"] = torch.zeros(4, 32) }));
        Assert.Contains("unet.down_blocks.0.resnets.0.conv1.lora_A.weight", e4.Message);

        var e5 = Fails(Write("meta.safetensors", new() { [Key(q, "lora_A")] = torch.zeros(4, 32), [Key(q, "lora_B")] = torch.zeros(32, 4) },
            new() { ["format"] = "pt", [LoraFile.MetadataKey] = "{\"unet.r\": 8, \"unet.lora_alpha\": 8}" }));
        Assert.Contains(Key(q, "lora_A"), e5.Message);
        Assert.Contains("r = 8", e5.Message);

        using var nan = torch.zeros(32, 4);
        nan[0, 0] = torch.tensor(float.NaN);
        var e6 = Fails(Write("nan.safetensors", new() { [Key(q, "lora_A")] = torch.zeros(4, 32), [Key(q, "lora_B")] = nan.clone() }));
        Assert.Contains(Key(q, "lora_B"), e6.Message);
        Assert.Contains("NaN", e6.Message);

        var e7 = Fails(Write("te.safetensors", new() { ["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"] = torch.zeros(4, 32) }));
        Assert.Contains("only UNet LoRA layers", e7.Message);

        // a truncated file: the safetensors reader names the file and key
        string good = Write("good.safetensors", new() { [Key(q, "lora_A")] = torch.zeros(4, 32), [Key(q, "lora_B")] = torch.zeros(32, 4) });
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(dir.File("trunc.safetensors"), bytes[..^16]);
        var e8 = Assert.Throws<DiffEggException>(() => LoraFile.Load(dir.File("trunc.safetensors"), unet));
        Assert.Contains("trunc.safetensors", e8.Message);
        // nothing stays attached after a failed load
        using var _ = LoraFile.Load(good, unet);
    }
}
