using DiffEgg.Common;
using DiffEgg.FineTuning;
using DiffEgg.FineTuning.Lora;
using DiffEgg.Models.UNet;
using DiffEgg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests.FineTuning;

[Collection("TorchThreads")]   // switches oneDNN off for a while: never in parallel with other tests
public class EdgeGeneratorTests
{
    public EdgeGeneratorTests() { TorchRuntime.EnsureLoaded(); }

    [Fact]
    public void GroupNormsStartAtOneAndZeroAndTheOutputHasTheRequestedSize()
    {
        torch.manual_seed(0);
        using var g = new EdgeGenerator(new EdgeGeneratorConfig { UpBlocks = new[] { 0, 1, 2 }, InChannels = new[] { 64, 64, 32 }, FpnChannels = 16, NormGroups = 8 });
        var norms = g.named_parameters().Where(p => p.name.Contains("norm")).ToList();
        Assert.Equal(2 * 5, norms.Count);   // 3 FPN levels + fuse + head, weight and bias each
        foreach (var (name, p) in norms)
        {
            float expected = name.EndsWith(".weight") ? 1f : 0f;
            Assert.True(p.eq(expected).all().item<bool>(), $"{name} is not initialised to {expected}");
        }
        Assert.All(g.named_parameters(), p => Assert.True(p.parameter.isfinite().all().item<bool>(), p.name));
        using var gen = new torch.Generator(1);
        var feats = new[] { torch.randn(new long[] { 2, 64, 8, 8 }, generator: gen), torch.randn(new long[] { 2, 64, 16, 16 }, generator: gen), torch.randn(new long[] { 2, 32, 16, 16 }, generator: gen) };
        using var y = g.forward(feats, 40, 24);
        Assert.Equal(new long[] { 2, 1, 40, 24 }, y.shape);
        Assert.True(y.isfinite().all().item<bool>());
        // every level contributes: perturbing the coarsest feature changes the logits
        feats[0].add_(1.0);
        using var y2 = g.forward(feats, 40, 24);
        Assert.True((y2 - y).abs().max().item<float>() > 1e-4);
        foreach (var f in feats) f.Dispose();
        var e = Assert.Throws<DiffEggException>(() => new EdgeGeneratorConfig { UpBlocks = new[] { 0 }, InChannels = new[] { 8 }, FpnChannels = 12, NormGroups = 8 }.Validate("cfg.json"));
        Assert.Equal("cfg.json: key 'norm_num_groups' = 8 must divide fpn_channels 12", e.Message);
    }

    [Fact]
    public void TrainingRuntimeGivesConvolutionGradientsThatMatchTheirDefinition()
    {
        bool? before = TorchRuntime.OneDnnEnabled;
        using (TorchRuntime.TrainingConvolutions())
        {
            double err = TorchRuntime.ConvolutionGradientError();   // forward with oneDNN (where available), backward without
            Assert.True(err <= 1e-6, $"input gradient of a 3×3 convolution is off by {err} under the training runtime");
            Assert.NotEqual(true, TorchRuntime.OneDnnEnabled);
            using (TorchRuntime.ForwardConvolutions()) Assert.Equal(before, TorchRuntime.OneDnnEnabled);
            Assert.NotEqual(true, TorchRuntime.OneDnnEnabled);
        }
        Assert.Equal(before, TorchRuntime.OneDnnEnabled);   // restored for inference
    }

    [Fact]
    public void OnlyLoraAndGeneratorParametersGetGradients()
    {
        using var unet = BaseModelTrainer.CreateModel(BaseModelConfigs.Tiny, 1);
        foreach (var p in unet.parameters()) p.requires_grad = false;
        using var adapter = EdgeAdapter.Create(unet, new LoraOptions(), fpnChannels: 8, timestep: 0, seed: 2);
        using var dataSet = FineTuneTestUtil.MakeSet(2, 16);
        var (data, _) = dataSet;
        using var set = FineTuneData.Load(Path.Combine(data, "images"), Path.Combine(data, "edges"), 16);

        double Backward()
        {
            foreach (var p in adapter.Parameters()) p.grad?.zero_();
            using var scope = torch.NewDisposeScope();
            using var gen = new torch.Generator(3);
            var (idx, flip) = set.Draw(2, gen);
            var x = set.Images(idx, flip);
            var target = set.Targets(idx, flip);
            using var feats = new DecoderFeatures(adapter.Generator.Config.UpBlocks);
            using var cond = torch.randn(new long[] { 2, 2, 16 }, generator: gen);   // a real (non-zero) conditioning: attn2 sees it
            Tensor loss;
            using (TorchRuntime.ForwardConvolutions())
            {
                var eps = unet.forward(x, torch.tensor(new long[] { 0 }), cond, decoder: feats);
                loss = MaskedDice.Loss(torch.sigmoid(adapter.Generator.forward(feats.Features, 16, 16)), target) + eps.square().mean();
            }
            loss.backward();
            return loss.item<float>();
        }

        using var convolutions = TorchRuntime.TrainingConvolutions();
        Backward();
        Assert.All(unet.named_parameters(), p => Assert.True(p.parameter.grad is null || p.parameter.grad.IsInvalid, $"frozen base parameter {p.name} got a gradient"));
        Assert.All(adapter.Generator.named_parameters(), p => Assert.True(p.parameter.grad is { } gr && gr.abs().sum().item<float>() > 0, $"G_φ parameter {p.name} got no gradient"));
        Assert.All(adapter.Lora.Layers, l => Assert.True(l.B.grad is { } gr && gr.abs().sum().item<float>() > 0, $"LoRA B of {l.Path} got no gradient"));
        // with B = 0 the gradient of A is exactly 0; once B moves, A learns too
        using (torch.no_grad()) foreach (var l in adapter.Lora.Layers) l.B.fill_(0.01);
        Backward();
        Assert.All(adapter.Lora.Layers, l => Assert.True(l.A.grad is { } gr && gr.abs().sum().item<float>() > 0, $"LoRA A of {l.Path} got no gradient"));
        Assert.Equal(adapter.Lora.Layers.Count * 2 + adapter.Generator.parameters().Count(), adapter.Parameters().Count());
    }
}
