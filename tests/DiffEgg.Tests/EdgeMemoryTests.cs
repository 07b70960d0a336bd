using DiffEgg.Attention;
using DiffEgg.Common;
using DiffEgg.Edges;
using DiffEgg.Models;
using DiffEgg.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

/// <summary>The memory estimate of the edge pipeline (issue 11, item 3): its layer model against real forward passes, its growth, its parsing.</summary>
public class EdgeMemoryTests
{
    public EdgeMemoryTests() => TorchRuntime.EnsureLoaded();

    sealed class RecordingSink : IAttentionSink
    {
        public readonly List<(int Heads, int H, int W)> Layers = new();
        public void Add(string layerName, Tensor probs, int heads, int height, int width) => Layers.Add((heads, height, width));
    }

    static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "DiffEgg.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no DiffEgg.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>The estimate's list of attn1 layers (level, heads) is what a real UNet pass hands to the attention sink, in order.</summary>
    [Theory]
    [InlineData("fixture", 64, 48)]
    [InlineData("embedded", 64, 32)]
    public void LayerModel_MatchesTheSinkCallsOfARealPass(string which, int latentW, int latentH)
    {
        string path = which == "fixture" ? TestPaths.Sd15Tiny : Path.Combine(RepoRoot(), "models", "embedded");
        using var model = DiffusionModelFolder.Load(path);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var sink = new RecordingSink();
        var x = torch.zeros(1, model.Unet.Config.InChannels, latentH, latentW);
        using var cond = model.EncodeEmptyPrompt();
        model.Unet.forward(x, torch.tensor(new long[] { 10 }), cond, sink);
        var expected = EdgeMemory.SelfAttentionLayers(model.Unet.Config)
            .Select(l => (l.Heads, latentH >> l.Level, latentW >> l.Level)).ToList();
        Assert.Equal(expected, sink.Layers);
    }

    [Fact]
    public void StableDiffusion15_Has16SelfAttentionLayers_AndTheEstimateGrowsLinearlyWithThePixels()
    {
        var sd = UNet2DConditionConfig.StableDiffusion15;
        var layers = EdgeMemory.SelfAttentionLayers(sd);
        Assert.Equal(16, layers.Count);
        Assert.Equal(new[] { 5, 5, 5, 1 }, Enumerable.Range(0, 4).Select(l => layers.Count(x => x.Level == l)));
        Assert.All(layers, l => Assert.Equal(8, l.Heads));
        var vae = new DiffEgg.Models.Vae.AutoencoderKLConfig();
        long at512 = EdgeMemory.EstimateBytes(sd, vae, 512, 512, 5);
        // far below one 8-head [4096, 4096] probability tensor of the explicit path (512 MiB): no N² tensor is ever whole
        Assert.True(at512 < 2L * 8 * 4096 * 4096 * 4, $"{at512}");
        // at least the VAE encoder's first block at 512² and one block of attention rows
        Assert.True(at512 >= 6L * 128 * 512 * 512 * 4, $"{at512}");
        // twice the side → about 4× the memory (the block budget is constant); fewer passes never need more
        double ratio = (double)EdgeMemory.EstimateBytes(sd, vae, 1024, 1024, 5) / at512;
        Assert.InRange(ratio, 3.0, 4.2);
        Assert.True(EdgeMemory.EstimateBytes(sd, vae, 512, 512, 1) <= at512);
        // a smaller block budget never needs more
        Assert.True(EdgeMemory.EstimateBytes(sd, null, 64, 64, 1, 16L << 20) < EdgeMemory.EstimateBytes(sd, null, 64, 64, 1));
        Assert.Equal(16L << 20, EdgeMemory.ChunkBytesFor(64L << 20));
        Assert.Equal(EdgeKL.DefaultChunkBytes, EdgeMemory.ChunkBytesFor(null));
        Assert.Equal(128L << 20, EdgeMemory.ChunkBytesFor(1L << 30));
    }

    [Theory]
    [InlineData("8GB", 8L << 30)]
    [InlineData("512MB", 512L << 20)]
    [InlineData("1.5G", 3L << 29)]
    [InlineData("64 KiB", 64L << 10)]
    [InlineData("1000", 1000L)]
    public void Sizes_Parse(string text, long bytes) => Assert.Equal(bytes, EdgeMemory.TryParseSize(text));

    [Theory]
    [InlineData("")]
    [InlineData("lots")]
    [InlineData("8 PB")]
    [InlineData("-1GB")]
    [InlineData("0")]
    public void BadSizes_DoNotParse(string text) => Assert.Null(EdgeMemory.TryParseSize(text));

    [Fact]
    public void MachineMemory_IsReadable() => Assert.True(EdgeMemory.AvailableBytes() > 0 && EdgeMemory.ProcessBytes() > 0);
}
