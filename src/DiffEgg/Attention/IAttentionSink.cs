using static TorchSharp.torch;

namespace DiffEgg.Attention;

/// <summary>
/// What a UNet forward can report its self-attention (attn1) layers to: an <see cref="IAttentionSink"/> (the probability maps,
/// computed explicitly) or an <see cref="IQueryKeySink"/> (queries and keys only; the layer runs fused attention).
/// </summary>
public interface IAttentionCapture
{
}

/// <summary>
/// Receives self-attention (attn1) probability maps as the UNet computes them, one layer at a time.
/// <paramref name="probs"/> is <c>[batch·heads, h·w, h·w]</c> (rows = queries, token index = row·w + col, each row sums to 1);
/// <paramref name="heads"/> lets the sink split the batch. The sink must copy or reduce what it needs:
/// the tensor is disposed after the call returns (so 16 full maps are never alive at once).
/// </summary>
public interface IAttentionSink : IAttentionCapture
{
    void Add(string layerName, Tensor probs, int heads, int height, int width);
}

/// <summary>
/// Receives the queries and keys of each self-attention (attn1) layer, <c>[batch, heads, h·w, d]</c> (token index = row·w + col), and
/// the layer's softmax scale (1/√d): the layer's probabilities are softmax(scale·QKᵀ) row by row, which the sink can compute in blocks of
/// query rows later (<see cref="QueryKeyAttention"/>). The tensors are disposed after the call returns (copy what you keep); the layer
/// itself runs fused attention, so no <c>[h·w, h·w]</c> tensor is made during the forward.
/// </summary>
public interface IQueryKeySink : IAttentionCapture
{
    void Add(string layerName, Tensor query, Tensor key, double scale, int height, int width);
}
