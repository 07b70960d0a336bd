using static TorchSharp.torch;

namespace DiffEgg.Attention;

/// <summary>
/// Receives self-attention (attn1) probability maps as the UNet computes them, one layer at a time.
/// <paramref name="probs"/> is <c>[batch·heads, h·w, h·w]</c> (rows = queries, token index = row·w + col, each row sums to 1);
/// <paramref name="heads"/> lets the sink split the batch. The sink must copy or reduce what it needs:
/// the tensor is disposed after the call returns (so 16 full maps are never alive at once).
/// </summary>
public interface IAttentionSink
{
    void Add(string layerName, Tensor probs, int heads, int height, int width);
}
