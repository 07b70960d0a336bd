using DiffEgg.Common;
using DiffEgg.Models;
using DiffEgg.Models.Schedulers;
using DiffEgg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests.Training;

[Collection("TorchThreads")]
public class PixelModelFolderTests
{
    static (TempDir Dir, Tensor Out, Tensor Null) SaveTiny(bool fp16)
    {
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Tiny, 7);
        unet.eval();
        using var sched = DDPMScheduler.StableDiffusion15();
        using var g = new torch.Generator(3);
        var nullEmb = torch.randn(new long[] { 1, 3, 16 }, generator: g);
        var dir = new TempDir("diffegg-pixel", "model");
        PixelModelFolder.Save(dir, unet, nullEmb, sched, fp16);
        using var x = torch.randn(new long[] { 2, 3, 16, 16 }, generator: g);
        using var _ = torch.no_grad();
        var y = unet.forward(x, torch.tensor(new long[] { 5, 500 }), nullEmb.expand(2, -1, -1));
        return (dir, y, nullEmb);
    }

    static Tensor Run(DiffusionModelFolder f)
    {
        using var g = new torch.Generator(3);
        _ = torch.randn(new long[] { 1, 3, 16 }, generator: g);
        using var x = torch.randn(new long[] { 2, 3, 16, 16 }, generator: g);
        using var _n = torch.no_grad();
        using var c = f.EncodeEmptyPrompt();
        return f.Unet.forward(x, torch.tensor(new long[] { 5, 500 }), c.expand(2, -1, -1));
    }

    [Fact]
    public void Fp32FolderRoundTripGivesIdenticalOutputs()
    {
        var (dir, expected, nullEmb) = SaveTiny(fp16: false);
        using var dirScope = dir;
        using var f = DiffusionModelFolder.Load(dir);
        Assert.Null(f.Vae);
        Assert.Null(f.TextEncoder);
        Assert.True(f.IsPixelSpace);
        Assert.Equal(3, f.Unet.Config.InChannels);
        Assert.Equal(new[] { "DownBlock2D", "CrossAttnDownBlock2D" }, f.Unet.Config.DownBlockTypes);
        Assert.Equal(new[] { 2, 2 }, f.Unet.Config.AttentionHeads);
        using (var e = f.EncodeEmptyPrompt()) Assert.True(e.equal(nullEmb).all().item<bool>());
        using var y = Run(f);
        Assert.True(y.equal(expected).all().item<bool>(), "outputs after write → load differ");
        Assert.Contains("\"pixel_space\": true", File.ReadAllText(Path.Combine(dir, "model_index.json")));
    }

    [Fact]
    public void Fp16FolderStoresHalfWeightsAndStaysClose()
    {
        var (dir, expected, _) = SaveTiny(fp16: true);
        using var dirScope = dir;
        using (var st = DiffEgg.Formats.SafeTensors.SafeTensorsFile.Open(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors")))
            Assert.All(st.Keys, k => Assert.Equal(DiffEgg.Formats.SafeTensors.SafeTensorsDType.F16, st.Info(k).DType));
        using var f = DiffusionModelFolder.Load(dir);
        using var y = Run(f);
        double maxDiff = (y - expected).abs().max().item<float>();
        Assert.True(maxDiff < 2e-2 && maxDiff > 0, $"fp16 round trip max |Δ| = {maxDiff}");
    }

    [Fact]
    public void MissingOrMisshapenNullEmbeddingIsAClearError()
    {
        var (dir, _, _) = SaveTiny(fp16: false);
        using var dirScope = dir;
        string file = Path.Combine(dir, PixelModelFolder.NullEmbeddingFile);
        using (var wrong = torch.zeros(1, 2, 5))
            DiffEgg.Formats.SafeTensors.SafeTensorsWriter.Save(file, new[] { KeyValuePair.Create(PixelModelFolder.NullEmbeddingKey, wrong) });
        var e1 = Assert.Throws<DiffEggException>(() => DiffusionModelFolder.Load(dir));
        Assert.Contains("null_embedding.safetensors", e1.Message);
        Assert.Contains("[1,2,5]", e1.Message);
        File.Delete(file);
        var e2 = Assert.Throws<DiffEggException>(() => DiffusionModelFolder.Load(dir));
        Assert.Contains("null_embedding.safetensors: null embedding file not found", e2.Message);
    }

    [Fact]
    public void FreshModelHasUnitGroupNormsAndFiniteOutput()
    {
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Small, 1);
        int norms = 0;
        foreach (var (name, p) in unet.named_parameters())
            if (name.EndsWith("norm1.weight") || name.EndsWith("conv_norm_out.weight") || name.EndsWith(".norm.weight"))
            {
                norms++;
                Assert.True(p.eq(1).all().item<bool>(), name);
            }
        Assert.True(norms > 5, $"only {norms} norm weights found");
        using var _ = torch.no_grad();
        using var x = torch.randn(1, 3, 64, 64);
        using var y = unet.forward(x, torch.tensor(new long[] { 10 }), torch.zeros(1, 4, 32));
        Assert.True(y.isfinite().all().item<bool>());
        Assert.Equal(new long[] { 1, 3, 64, 64 }, y.shape);
    }
}
