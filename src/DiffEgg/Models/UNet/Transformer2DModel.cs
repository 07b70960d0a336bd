using DiffEgg.Attention;
using DiffEgg.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

using GroupNorm = DiffEgg.Models.Layers.GroupNorm;
using LayerNorm = DiffEgg.Models.Layers.LayerNorm;

namespace DiffEgg.Models.UNet;

/// <summary>diffusers' <c>GEGLU</c>: <c>proj</c> to 2×inner, then hidden · gelu(gate) (exact erf GELU).</summary>
public sealed class GEGLU : nn.Module<Tensor, Tensor>, IAdaptableBlock
{
    readonly Linear proj;
    readonly DeltaSlots _deltas = new("proj");

    public GEGLU(int dimIn, int dimOut) : base(nameof(GEGLU))
    {
        proj = nn.Linear(dimIn, dimOut * 2);
        RegisterComponents();
    }

    /// <summary>The LoRA-adaptable projection <c>proj</c>.</summary>
    public IReadOnlyList<(string Name, nn.Module Projection)> Projections => new (string, nn.Module)[] { ("proj", proj) };

    /// <summary>Attaches (or removes) the side path of <c>proj</c> (see <see cref="IAdaptableBlock"/>).</summary>
    public void SetDelta(string name, IProjectionDelta? delta) => _deltas.Set(name, delta);

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var parts = _deltas.Apply("proj", proj, x).chunk(2, -1);
        return (parts[0] * nn.functional.gelu(parts[1])).MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>FeedForward</c> with GEGLU: <c>net.0</c> GEGLU(dim→4·dim), <c>net.1</c> dropout, <c>net.2</c> Linear(4·dim→dim).</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>, IAdaptableBlock
{
    readonly ModuleList<nn.Module<Tensor, Tensor>> net;
    readonly DeltaSlots _deltas = new("net.2");

    public FeedForward(int dim, int mult = 4) : base(nameof(FeedForward))
    {
        int inner = dim * mult;
        net = nn.ModuleList<nn.Module<Tensor, Tensor>>(new GEGLU(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim));
        RegisterComponents();
    }

    /// <summary>The LoRA-adaptable output projection <c>net.2</c> (the input projection is <c>net.0.proj</c>, adaptable on the GEGLU).</summary>
    public IReadOnlyList<(string Name, nn.Module Projection)> Projections => new (string, nn.Module)[] { ("net.2", (nn.Module)net[2]) };

    /// <summary>Attaches (or removes) the side path of <c>net.2</c> (see <see cref="IAdaptableBlock"/>).</summary>
    public void SetDelta(string name, IProjectionDelta? delta) => _deltas.Set(name, delta);

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        x = net[0].forward(x);
        x = net[1].forward(x);
        x = _deltas.Apply("net.2", net[2], x);
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>BasicTransformerBlock</c> (layer_norm): self-attention attn1, cross-attention attn2, GEGLU feed-forward, each pre-norm with residual.</summary>
public sealed class BasicTransformerBlock : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly LayerNorm norm1;
    readonly Layers.Attention attn1;
    readonly LayerNorm norm2;
    readonly Layers.Attention attn2;
    readonly LayerNorm norm3;
    readonly FeedForward ff;

    public Layers.Attention Attn1 => attn1;

    public BasicTransformerBlock(int dim, int heads, int dimHead, int crossAttentionDim, bool upcastAttention) : base(nameof(BasicTransformerBlock))
    {
        norm1 = new LayerNorm(dim, 1e-5);
        attn1 = new Layers.Attention(dim, null, heads, dimHead, bias: false, upcastAttention: upcastAttention);
        norm2 = new LayerNorm(dim, 1e-5);
        attn2 = new Layers.Attention(dim, crossAttentionDim, heads, dimHead, bias: false, upcastAttention: upcastAttention);
        norm3 = new LayerNorm(dim, 1e-5);
        ff = new FeedForward(dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor? encoderHiddenStates) => forward(x, encoderHiddenStates, null, 0, 0);

    /// <summary>Runs the block on tokens [B, H·W, C]; attn1 reports to <paramref name="sink"/> with the grid <paramref name="height"/>×<paramref name="width"/>.</summary>
    public Tensor forward(Tensor x, Tensor? encoderHiddenStates, IAttentionCapture? sink, int height, int width)
    {
        using var scope = torch.NewDisposeScope();
        x = attn1.forward(norm1.forward(x), null, sink, height, width) + x;
        x = attn2.forward(norm2.forward(x), encoderHiddenStates, null, height, width) + x;
        x = ff.forward(norm3.forward(x)) + x;
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>Transformer2DModel</c> (continuous input): GroupNorm (eps 1e-6) → proj_in (1×1 conv, or Linear with use_linear_projection) → transformer blocks → proj_out → + input.</summary>
public sealed class Transformer2DModel : nn.Module<Tensor, Tensor?, Tensor>, IAdaptableBlock
{
    readonly GroupNorm norm;
    readonly nn.Module<Tensor, Tensor> proj_in;
    readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    readonly nn.Module<Tensor, Tensor> proj_out;
    readonly bool _linear;
    readonly DeltaSlots _deltas = new("proj_in", "proj_out");

    public Transformer2DModel(int heads, int dimHead, int inChannels, int numLayers, int groups, int crossAttentionDim,
        bool useLinearProjection, bool upcastAttention) : base(nameof(Transformer2DModel))
    {
        int inner = heads * dimHead;
        _linear = useLinearProjection;
        norm = new GroupNorm(groups, inChannels, 1e-6);
        proj_in = useLinearProjection ? nn.Linear(inChannels, inner) : nn.Conv2d(inChannels, inner, 1);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new BasicTransformerBlock(inner, heads, dimHead, crossAttentionDim, upcastAttention)).ToArray());
        proj_out = useLinearProjection ? nn.Linear(inner, inChannels) : nn.Conv2d(inner, inChannels, 1);
        RegisterComponents();
    }

    /// <summary>The LoRA-adaptable projections <c>proj_in</c> and <c>proj_out</c> (Linear, or 1×1 Conv2d without use_linear_projection).</summary>
    public IReadOnlyList<(string Name, nn.Module Projection)> Projections =>
        new (string, nn.Module)[] { ("proj_in", (nn.Module)proj_in), ("proj_out", (nn.Module)proj_out) };

    /// <summary>Attaches (or removes) the side path of one projection (see <see cref="IAdaptableBlock"/>).</summary>
    public void SetDelta(string name, IProjectionDelta? delta) => _deltas.Set(name, delta);

    public override Tensor forward(Tensor x, Tensor? encoderHiddenStates) => forward(x, encoderHiddenStates, null);

    /// <summary>Runs on a feature map [B, C, H, W]; self-attention maps of its attn1 layers go to <paramref name="sink"/> (token index h·W + w).</summary>
    public Tensor forward(Tensor input, Tensor? encoderHiddenStates, IAttentionCapture? sink)
    {
        using var scope = torch.NewDisposeScope();
        long b = input.shape[0], height = input.shape[2], width = input.shape[3];
        var h = norm.forward(input);
        long inner;
        if (!_linear)
        {
            h = _deltas.Apply("proj_in", proj_in, h);
            inner = h.shape[1];
            h = h.permute(0, 2, 3, 1).reshape(b, height * width, inner);
        }
        else
        {
            inner = h.shape[1];
            h = _deltas.Apply("proj_in", proj_in, h.permute(0, 2, 3, 1).reshape(b, height * width, inner));
            inner = h.shape[2];
        }
        foreach (var block in transformer_blocks) h = block.forward(h, encoderHiddenStates, sink, (int)height, (int)width);
        if (!_linear)
            h = _deltas.Apply("proj_out", proj_out, h.reshape(b, height, width, inner).permute(0, 3, 1, 2).contiguous());
        else
            h = _deltas.Apply("proj_out", proj_out, h).reshape(b, height, width, -1).permute(0, 3, 1, 2).contiguous();
        return (h + input).MoveToOuterDisposeScope();
    }
}
