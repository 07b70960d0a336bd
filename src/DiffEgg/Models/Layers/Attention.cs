using DiffEgg.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffEgg.Models.Layers;

/// <summary>
/// diffusers' <c>Attention</c> (multi-head scaled dot-product attention with <c>to_q/to_k/to_v/to_out.0</c>).
/// Default path: <c>scaled_dot_product_attention</c>. For layers with a <see cref="CaptureName"/> (attn1 layers): an
/// <see cref="IQueryKeySink"/> receives Q and K <c>[B, heads, HW, d]</c> and the layer still runs fused attention; an
/// <see cref="IAttentionSink"/> makes the layer compute the probabilities <c>softmax(QKᵀ·scale)</c> explicitly, hand them over as
/// <c>[B·heads, HW, HW]</c> and multiply them with V (O((HW)²) memory: the reference path).
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor?, Tensor>, IAdaptableBlock
{
    readonly Linear to_q;
    readonly Linear to_k;
    readonly Linear to_v;
    readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
    readonly GroupNorm? group_norm;
    readonly DeltaSlots _deltas = new("to_q", "to_k", "to_v", "to_out.0");

    public int Heads { get; }
    public int DimHead { get; }
    public double Scale { get; }
    public bool ResidualConnection { get; }
    public bool UpcastAttention { get; }

    /// <summary>Module path used as the layer name for attention capture (set by the owning model for attn1 layers; null = never captured).</summary>
    public string? CaptureName { get; internal set; }

    /// <summary>
    /// When set, called with this layer's attention output <c>[B, N, C]</c> (after <c>to_out</c>, before any residual) on every forward;
    /// the tensor is disposed after the call (copy what you keep). Used to read a layer's features (the coarse-mask baseline).
    /// </summary>
    public Action<Tensor>? OutputTap { get; set; }

    /// <param name="queryDim">channels of the query input</param>
    /// <param name="crossAttentionDim">channels of the key/value input (null = self-attention)</param>
    /// <param name="bias">bias on to_q/to_k/to_v</param>
    /// <param name="normGroups">if set, a GroupNorm (eps <paramref name="normEps"/>) on the (4-D) input, as in the VAE mid-block</param>
    public Attention(int queryDim, int? crossAttentionDim, int heads, int dimHead, bool bias, bool upcastAttention = false,
        bool residualConnection = false, int? normGroups = null, double normEps = 1e-5) : base(nameof(Attention))
    {
        Heads = heads;
        DimHead = dimHead;
        Scale = 1.0 / Math.Sqrt(dimHead);
        ResidualConnection = residualConnection;
        UpcastAttention = upcastAttention;
        int inner = heads * dimHead;
        int kv = crossAttentionDim ?? queryDim;
        if (normGroups is int g) group_norm = new GroupNorm(g, queryDim, normEps);
        to_q = nn.Linear(queryDim, inner, hasBias: bias);
        to_k = nn.Linear(kv, inner, hasBias: bias);
        to_v = nn.Linear(kv, inner, hasBias: bias);
        to_out = nn.ModuleList<nn.Module<Tensor, Tensor>>(nn.Linear(inner, queryDim, hasBias: true), nn.Dropout(0.0));
        RegisterComponents();
    }

    /// <summary>The LoRA-adaptable projections: <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>.</summary>
    public IReadOnlyList<(string Name, nn.Module Projection)> Projections =>
        new (string, nn.Module)[] { ("to_q", to_q), ("to_k", to_k), ("to_v", to_v), ("to_out.0", (nn.Module)to_out[0]) };

    /// <summary>Attaches (or removes) the side path of one projection (see <see cref="IAdaptableBlock"/>).</summary>
    public void SetDelta(string name, IProjectionDelta? delta) => _deltas.Set(name, delta);

    public override Tensor forward(Tensor hidden, Tensor? encoderHiddenStates) => forward(hidden, encoderHiddenStates, null, 0, 0);

    /// <summary>Attention over tokens <paramref name="hidden"/> [B, N, C] (or a [B, C, H, W] map); <paramref name="height"/>×<paramref name="width"/> is the token grid reported to the sink.</summary>
    public Tensor forward(Tensor hidden, Tensor? encoderHiddenStates, IAttentionCapture? sink, int height, int width)
    {
        using var scope = torch.NewDisposeScope();
        var residual = hidden;
        bool spatial = hidden.dim() == 4;
        long b = hidden.shape[0], c = hidden.shape[1], h4 = 0, w4 = 0;
        if (spatial)
        {
            h4 = hidden.shape[2]; w4 = hidden.shape[3];
            hidden = hidden.view(b, c, h4 * w4).transpose(1, 2);
            if (height == 0) { height = (int)h4; width = (int)w4; }
        }
        if (group_norm is not null) hidden = group_norm.forward(hidden.transpose(1, 2)).transpose(1, 2);

        var ctx = encoderHiddenStates ?? hidden;
        long n = hidden.shape[1], m = ctx.shape[1];
        var q = _deltas.Apply("to_q", to_q, hidden).view(b, n, Heads, DimHead).permute(0, 2, 1, 3);
        var k = _deltas.Apply("to_k", to_k, ctx).view(b, m, Heads, DimHead).permute(0, 2, 1, 3);
        var v = _deltas.Apply("to_v", to_v, ctx).view(b, m, Heads, DimHead).permute(0, 2, 1, 3);
        var dtype = q.dtype;
        if (UpcastAttention && dtype != ScalarType.Float32) { q = q.to_type(ScalarType.Float32); k = k.to_type(ScalarType.Float32); v = v.to_type(ScalarType.Float32); }

        Tensor o;
        if (sink is IAttentionSink probSink && CaptureName is not null)
        {
            using var scale = Scale.ToScalar();
            var q3 = q.reshape(b * Heads, n, DimHead).mul(scale);   // the scale folded into q ([B·H, N, d]) instead of a pass over the [B·H, N, N] scores
            var k3 = k.reshape(b * Heads, m, DimHead);
            var v3 = v.reshape(b * Heads, m, DimHead);
            var probs = q3.bmm(k3.transpose(1, 2));
            // softmax in place: exp(s − max) / Σ — one [B·H, N, N] tensor alive instead of two
            using (var mx = probs.amax(new long[] { -1 }, keepdim: true)) probs.sub_(mx).exp_();
            using (var sum = probs.sum(-1, keepdim: true)) probs.div_(sum);
            probSink.Add(CaptureName, probs, Heads, height, width);
            o = probs.bmm(v3).view(b, Heads, n, DimHead);
            probs.Dispose();
        }
        else
        {
            if (sink is IQueryKeySink qkSink && CaptureName is not null) qkSink.Add(CaptureName, q, k, Scale, height, width);
            o = nn.functional.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous());
        }
        if (o.dtype != dtype) o = o.to_type(dtype);
        o = o.permute(0, 2, 1, 3).reshape(b, n, Heads * DimHead);
        o = _deltas.Apply("to_out.0", to_out[0], o);
        o = to_out[1].forward(o);
        OutputTap?.Invoke(o);
        if (spatial) o = o.transpose(-1, -2).reshape(b, c, h4, w4);
        if (ResidualConnection) o = o + residual;
        return o.MoveToOuterDisposeScope();
    }
}
