using System.Text;
using DiffEgg.Common;
using DiffEgg.Models;
using DiffEgg.Models.Clip;
using DiffEgg.Models.Config;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.UNet;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class SafeTensorsTests
{
    readonly ITestOutputHelper _out;
    public SafeTensorsTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    /// <summary>Builds a raw safetensors file from a header JSON and a data section.</summary>
    static void WriteRaw(string path, string headerJson, byte[] data, long? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(headerJson);
        using var fs = System.IO.File.Create(path);
        fs.Write(BitConverter.GetBytes((ulong)(declaredLength ?? h.Length)));
        fs.Write(h);
        fs.Write(data);
    }

    [Fact]
    public void EveryManifestRowMatchesTheHeader()
    {
        var rows = System.IO.File.ReadAllLines(TestPaths.Fixture("manifest.tsv")).Where(l => !l.StartsWith('#') && l.Length > 0)
            .Select(l => l.Split('\t')).ToList();
        Assert.Equal(940, rows.Count);
        foreach (var group in rows.GroupBy(r => r[0]))
        {
            using var f = SafeTensorsFile.Open(TestPaths.Fixture(group.Key.Split('/')));
            Assert.Equal(group.Count(), f.Keys.Count);
            Assert.Equal("pt", f.Metadata["format"]);
            foreach (var r in group)
            {
                var info = f.Info(r[1]);
                Assert.Equal(r[2], info.DType.ToString());
                Assert.Equal(r[3], "[" + string.Join(",", info.Shape) + "]");
                Assert.Equal(long.Parse(r[4]), info.Begin);
            }
        }
    }

    [Fact]
    public void WriterRoundTripsF32AndF16AndReadsI64()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = new TempDir();
        torch.manual_seed(3);
        var a = torch.randn(3, 5);
        var ids = torch.tensor(new long[] { 1, -2, 3 });
        var tensors = new Dictionary<string, Tensor> { ["b.weight"] = a, ["a.ids"] = ids };
        SafeTensorsWriter.Save(dir.File("f32.safetensors"), tensors);
        SafeTensorsWriter.Save(dir.File("f16.safetensors"), tensors, SafeTensorsDType.F16);
        using (var f = SafeTensorsFile.Open(dir.File("f32.safetensors")))
        {
            Assert.Equal(new[] { "a.ids", "b.weight" }, f.Keys);
            Assert.True(f.Read("b.weight").eq(a).all().item<bool>());
            Assert.Equal(new long[] { 1, -2, 3 }, f.Read("a.ids").data<long>().ToArray());
            Assert.Equal(ScalarType.Float32, f.Read("a.ids", ScalarType.Float32).dtype);
        }
        using (var f = SafeTensorsFile.Open(dir.File("f16.safetensors")))
        {
            Assert.Equal(SafeTensorsDType.F16, f.Info("b.weight").DType);
            Assert.Equal(30, f.Info("b.weight").ByteLength);
            var back = f.Read("b.weight", ScalarType.Float32);
            Assert.Equal(ScalarType.Float32, back.dtype);
            Assert.True(back.eq(a.to_type(ScalarType.Float16).to_type(ScalarType.Float32)).all().item<bool>());
        }
        // header length is a multiple of 8, as safetensors writes it
        var bytes = System.IO.File.ReadAllBytes(dir.File("f32.safetensors"));
        Assert.Equal(0UL, BitConverter.ToUInt64(bytes, 0) % 8);
    }

    [Fact]
    public void ReadsBF16AsFloat32()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = new TempDir();
        // bf16: 1.0 = 0x3F80, -2.5 = 0xC020, 0.15625 = 0x3E20
        var data = new byte[] { 0x80, 0x3F, 0x20, 0xC0, 0x20, 0x3E, 0, 0 };
        WriteRaw(dir.File("bf16.safetensors"), "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", data);
        using var f = SafeTensorsFile.Open(dir.File("bf16.safetensors"));
        Assert.Equal(new float[] { 1f, -2.5f, 0.15625f, 0f }, f.Read("x", ScalarType.Float32).data<float>().ToArray());
    }

    [Fact]
    public void TruncatedFile_NamesFileAndKey()
    {
        using var dir = new TempDir();
        var src = System.IO.File.ReadAllBytes(TestPaths.Fixture("text_encoder", "model.safetensors"));
        string p = dir.File("truncated.safetensors");
        System.IO.File.WriteAllBytes(p, src[..(src.Length - 100)]);
        var e = Assert.Throws<DiffEggException>(() => SafeTensorsFile.Open(p).Dispose());
        _out.WriteLine(e.Message);
        Assert.StartsWith(p, e.Message);
        Assert.Contains("'text_model.final_layer_norm.weight'", e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.DoesNotContain("\n", e.Message);

        System.IO.File.WriteAllBytes(p, src[..20]);
        var e2 = Assert.Throws<DiffEggException>(() => SafeTensorsFile.Open(p).Dispose());
        Assert.StartsWith(p + ": header length", e2.Message);
    }

    [Fact]
    public void OverlappingOffsets_NameFileAndKey()
    {
        using var dir = new TempDir();
        string p = dir.File("overlap.safetensors");
        WriteRaw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]);
        var e = Assert.Throws<DiffEggException>(() => SafeTensorsFile.Open(p).Dispose());
        _out.WriteLine(e.Message);
        Assert.StartsWith(p, e.Message);
        Assert.Contains("'b'", e.Message);
        Assert.Contains("overlap", e.Message);
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'a'", "12 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "unsupported dtype")]
    [InlineData("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "dtype")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "cover 8 bytes", "12")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "'a'", "gap")]
    [InlineData("{\"__metadata__\":{\"format\":1}}", 0, "__metadata__", "strings")]
    [InlineData("[1,2]", 0, "JSON object", "header")]
    [InlineData("{not json", 0, "not valid JSON", "header")]
    public void MalformedHeaders_AreRejectedWithFileAndKey(string header, int dataBytes, string expect1, string expect2)
    {
        using var dir = new TempDir();
        string p = dir.File("bad.safetensors");
        WriteRaw(p, header, new byte[dataBytes]);
        var e = Assert.Throws<DiffEggException>(() => SafeTensorsFile.Open(p).Dispose());
        _out.WriteLine(e.Message);
        Assert.StartsWith(p, e.Message);
        Assert.Contains(expect1, e.Message);
        Assert.Contains(expect2, e.Message);
    }
}

public class StateDictLoaderTests
{
    readonly ITestOutputHelper _out;
    public StateDictLoaderTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    [Fact]
    public void MissingUnexpectedAndWrongShape_AllReportedInOneLine()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = new TempDir();
        var tensors = new Dictionary<string, Tensor>();
        using (var f = SafeTensorsFile.Open(TestPaths.Fixture("text_encoder", "model.safetensors")))
            foreach (var k in f.Keys) tensors[k] = f.Read(k);
        tensors.Remove("text_model.encoder.layers.1.mlp.fc2.bias");
        tensors["text_model.encoder.layers.0.mlp.fc1.weight"] = torch.zeros(36, 32);
        tensors["text_model.extra.weight"] = torch.zeros(2);
        tensors["text_model.embeddings.position_ids"] = torch.arange(77L).unsqueeze(0);   // harmless, ignored
        string p = dir.File("model.safetensors");
        SafeTensorsWriter.Save(p, tensors);
        using var te = new CLIPTextModel(CLIPTextConfig.FromJson(JsonConfig.Load(TestPaths.Fixture("text_encoder", "config.json"))));
        var e = Assert.Throws<DiffEggException>(() => StateDictLoader.Load(te, p));
        _out.WriteLine(e.Message);
        Assert.StartsWith(p + ":", e.Message);
        Assert.DoesNotContain("\n", e.Message);
        Assert.Contains("1 missing key(s): text_model.encoder.layers.1.mlp.fc2.bias", e.Message);
        Assert.Contains("1 unexpected key(s): text_model.extra.weight", e.Message);
        Assert.Contains("text_model.encoder.layers.0.mlp.fc1.weight (file [36,32], model [37,32])", e.Message);
        Assert.DoesNotContain("position_ids", e.Message);
    }

    [Fact]
    public void PositionIdsExtraIsIgnored_AndWeightsAreCopied()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = new TempDir();
        var tensors = new Dictionary<string, Tensor>();
        using (var f = SafeTensorsFile.Open(TestPaths.Fixture("text_encoder", "model.safetensors")))
            foreach (var k in f.Keys) tensors[k] = f.Read(k);
        tensors["text_model.embeddings.position_ids"] = torch.arange(77L).unsqueeze(0);
        string p = dir.File("model.safetensors");
        SafeTensorsWriter.Save(p, tensors, SafeTensorsDType.F16);
        using var te = new CLIPTextModel(CLIPTextConfig.FromJson(JsonConfig.Load(TestPaths.Fixture("text_encoder", "config.json"))));
        StateDictLoader.Load(te, p);
        var sd = te.state_dict();
        var expected = tensors["text_model.final_layer_norm.weight"].to_type(ScalarType.Float16).to_type(ScalarType.Float32);
        Assert.True(sd["text_model.final_layer_norm.weight"].eq(expected).all().item<bool>());
    }

    [Fact]
    public void UnsupportedConfigValue_NamesConfigFileAndKey()
    {
        using var dir = new TempDir();
        string p = dir.File("config.json");
        System.IO.File.WriteAllText(p, System.IO.File.ReadAllText(TestPaths.Fixture("unet", "config.json")).Replace("\"act_fn\": \"silu\"", "\"act_fn\": \"gelu\""));
        var e = Assert.Throws<DiffEggException>(() => UNet2DConditionConfig.FromJson(JsonConfig.Load(p)));
        _out.WriteLine(e.Message);
        Assert.StartsWith(p + ": key 'act_fn' = \"gelu\" is not supported", e.Message);

        System.IO.File.WriteAllText(p, System.IO.File.ReadAllText(TestPaths.Fixture("unet", "config.json")).Replace("\"class_embed_type\": null", "\"class_embed_type\": \"timestep\""));
        e = Assert.Throws<DiffEggException>(() => UNet2DConditionConfig.FromJson(JsonConfig.Load(p)));
        Assert.StartsWith(p + ": key 'class_embed_type'", e.Message);

        System.IO.File.WriteAllText(p, System.IO.File.ReadAllText(TestPaths.Fixture("unet", "config.json")).Replace("\"DownBlock2D\"", "\"AttnDownBlock2D\""));
        e = Assert.Throws<DiffEggException>(() => UNet2DConditionConfig.FromJson(JsonConfig.Load(p)));
        Assert.StartsWith(p + ": key 'down_block_types'", e.Message);
    }

    [Fact]
    public void ModuleNamesEqualCheckpointKeys()
    {
        using var unet = new UNet2DConditionModel(UNet2DConditionConfig.FromJson(JsonConfig.Load(TestPaths.Fixture("unet", "config.json"))));
        using var f = SafeTensorsFile.Open(TestPaths.Fixture("unet", "diffusion_pytorch_model.safetensors"));
        Assert.Equal(f.Keys.OrderBy(k => k, StringComparer.Ordinal), unet.state_dict().Keys.OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal(682, f.Keys.Count);
        Assert.Equal(16, unet.SelfAttentionLayers.Count);
        Assert.Equal("down_blocks.0.attentions.0.transformer_blocks.0.attn1", unet.SelfAttentionLayers[0]);
    }
}

public class DiffusionModelFolderTests
{
    readonly ITestOutputHelper _out;
    public DiffusionModelFolderTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    [Fact]
    public void LoadsFixtureFolder_EmptyPromptEqualsTransformers()
    {
        using var scope = torch.NewDisposeScope();
        using var m = DiffusionModelFolder.Load(TestPaths.Sd15Tiny);
        Assert.NotNull(m.Vae);
        Assert.NotNull(m.TextEncoder);
        Assert.Equal((998L, 999L), (m.PromptIds!.Bos, m.PromptIds.Eos));
        var c = m.EncodeEmptyPrompt();
        ParityAssert.Close(_out, "folder EncodeEmptyPrompt", ParityAssert.Io("text_encoder", "empty.last_hidden_state"), c);
        Assert.Equal(new long[] { 981, 961 }, m.Scheduler.InferenceTimesteps(50)[..2]);
    }

    [Fact]
    public void FolderWithoutVae_IsPixelSpace_AndMissingUnetIsAClearError()
    {
        using var dir = new TempDir();
        foreach (var sub in new[] { "unet", "text_encoder", "scheduler" })
        {
            Directory.CreateDirectory(dir.File(sub));
            foreach (var f in Directory.GetFiles(TestPaths.Fixture(sub)))
                if (!f.EndsWith("io.safetensors")) System.IO.File.Copy(f, Path.Combine(dir.File(sub), Path.GetFileName(f)));
        }
        using (var m = DiffusionModelFolder.Load(dir.Path))
        {
            Assert.Null(m.Vae);
            Assert.NotNull(m.TextEncoder);
        }
        Directory.Delete(dir.File("unet"), true);
        var e = Assert.Throws<DiffEggException>(() => DiffusionModelFolder.Load(dir.Path).Dispose());
        Assert.StartsWith(dir.Path + ": not a diffusers model folder", e.Message);
    }
}
