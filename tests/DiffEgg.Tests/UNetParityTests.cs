using DiffEgg.Attention;
using DiffEgg.Common;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.UNet;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

/// <summary>Shares one loaded fixture UNet across the parity tests.</summary>
public sealed class FixtureUNet : IDisposable
{
    public UNet2DConditionModel Model { get; }
    public SafeTensorsFile Io { get; }

    public FixtureUNet()
    {
        TorchRuntime.EnsureLoaded();
        torch.set_num_threads(1);
        Model = UNet2DConditionModel.FromFolder(TestPaths.Fixture("unet"));
        Io = SafeTensorsFile.Open(TestPaths.Fixture("unet", "io.safetensors"));
    }

    public void Dispose() { Model.Dispose(); Io.Dispose(); }
}

/// <summary>Records a clone of every attention map it receives (test only).</summary>
sealed class RecordingSink : IAttentionSink, IDisposable
{
    public Dictionary<string, (Tensor Probs, int Heads, int Height, int Width)> Maps { get; } = new();
    public List<string> Order { get; } = new();

    public void Add(string layerName, Tensor probs, int heads, int height, int width)
    {
        Maps[layerName] = (probs.detach().clone().DetachFromDisposeScope(), heads, height, width);
        Order.Add(layerName);
    }

    public void Dispose() { foreach (var m in Maps.Values) m.Probs.Dispose(); }
}

public class UNetParityTests : IClassFixture<FixtureUNet>
{
    readonly FixtureUNet _f;
    readonly ITestOutputHelper _out;

    public UNetParityTests(FixtureUNet f, ITestOutputHelper output) { _f = f; _out = output; }

    [Fact]
    public void T500_NoisePredAndEveryIntermediateMatchDiffusers()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var inter = new Dictionary<string, Tensor>();
        var pred = _f.Model.forward(_f.Io.Read("sample"), _f.Io.Read("t500.timestep"), _f.Io.Read("encoder_hidden_states"), intermediates: inter);
        ParityAssert.Close(_out, "unet t500.noise_pred", _f.Io.Read("t500.noise_pred"), pred);
        var names = new[] { "time_proj", "time_embedding", "conv_in", "down_blocks.0", "down_blocks.1", "down_blocks.2", "down_blocks.3",
            "mid_block", "up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3", "conv_norm_out" };
        foreach (var n in names)
            ParityAssert.Close(_out, "unet t500." + n, _f.Io.Read("t500." + n), inter[n]);
        Assert.Equal(names.Length, inter.Count);
        foreach (var t in inter.Values) t.Dispose();
    }

    [Fact]
    public void T10_NoisePredTimeProjAndEmbeddingMatchDiffusers()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var inter = new Dictionary<string, Tensor>();
        var pred = _f.Model.forward(_f.Io.Read("sample"), _f.Io.Read("t10.timestep"), _f.Io.Read("encoder_hidden_states"), intermediates: inter);
        ParityAssert.Close(_out, "unet t10.noise_pred", _f.Io.Read("t10.noise_pred"), pred);
        ParityAssert.Close(_out, "unet t10.time_proj", _f.Io.Read("t10.time_proj"), inter["time_proj"]);
        ParityAssert.Close(_out, "unet t10.time_embedding", _f.Io.Read("t10.time_embedding"), inter["time_embedding"]);
        // the timestep must matter: t=10 and t=500 predictions differ by far more than the tolerance
        double d = (pred - _f.Io.Read("t500.noise_pred")).abs().max().item<float>();
        Assert.True(d > 1e-2, $"t=10 vs t=500 differ by only {d}");
        foreach (var t in inter.Values) t.Dispose();
    }

    [Fact]
    public void Cfg_Batch2_MatchesDiffusers()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var pred = _f.Model.forward(_f.Io.Read("cfg.sample"), _f.Io.Read("cfg.timestep"), _f.Io.Read("cfg.encoder_hidden_states"));
        ParityAssert.Close(_out, "unet cfg.noise_pred", _f.Io.Read("cfg.noise_pred"), pred);
    }

    [Fact]
    public void Attn_NonSquare_All16SelfAttentionMapsMatchDiffusers()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var sink = new RecordingSink();
        var sample = _f.Io.Read("attn.sample");
        var ts = _f.Io.Read("attn.timestep");
        var ehs = _f.Io.Read("encoder_hidden_states");
        var pred = _f.Model.forward(sample, ts, ehs, sink);
        ParityAssert.Close(_out, "unet attn.noise_pred (capture on)", _f.Io.Read("attn.noise_pred"), pred);
        var plain = _f.Model.forward(sample, ts, ehs);
        ParityAssert.Close(_out, "unet attn.noise_pred (capture off, SDPA)", _f.Io.Read("attn.noise_pred"), plain);

        var expectedNames = _f.Io.Keys.Where(k => k.EndsWith(".attn1")).ToList();
        Assert.Equal(16, expectedNames.Count);
        Assert.Equal(expectedNames.OrderBy(x => x), sink.Maps.Keys.OrderBy(x => x));
        Assert.Equal(_f.Model.SelfAttentionLayers, sink.Order);
        foreach (var name in expectedNames)
        {
            var (probs, heads, h, w) = sink.Maps[name];
            Assert.Equal(4, heads);
            Assert.Equal(probs.shape[1], (long)h * w);
            ParityAssert.Close(_out, "unet attn " + name, _f.Io.Read(name), probs);
        }
        // H/W not swapped: the first layer sees the 16×8 latent as 16 rows × 8 columns
        Assert.Equal((16, 8), (sink.Maps[expectedNames.First(n => n.StartsWith("down_blocks.0"))].Height, sink.Maps[expectedNames.First(n => n.StartsWith("down_blocks.0"))].Width));
    }

    [Fact]
    public void FreshUNet_FromConfig_HasUnitNormsAndFiniteOutput()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        torch.manual_seed(1);
        using var unet = new UNet2DConditionModel(_f.Model.Config);
        Assert.Equal(_f.Model.state_dict().Keys.OrderBy(k => k, StringComparer.Ordinal), unet.state_dict().Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (name, p) in unet.named_parameters())
        {
            if (name.EndsWith("norm.weight") || name.EndsWith("norm1.weight") || name.EndsWith("conv_norm_out.weight"))
                Assert.True(p.eq(1).all().item<bool>(), name);
        }
        var pred = unet.forward(torch.randn(1, 4, 16, 16), torch.tensor(new long[] { 500 }), torch.randn(1, 77, 32));
        Assert.False(pred.isnan().any().item<bool>());
        Assert.False(pred.isinf().any().item<bool>());
    }
}
