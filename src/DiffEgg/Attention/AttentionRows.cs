using DiffEgg.Common;
using static TorchSharp.torch;

namespace DiffEgg.Attention;

/// <summary>
/// An accumulated self-attention map SA <c>[H·W, H·W]</c> (Eq 11-12) read in blocks of whole grid rows, so that PeakKL (Alg 1) and
/// EdgeKL (Eq 6) never need all (H·W)² values at once. Row index = grid row · W + grid column; every row is a distribution over the
/// H·W keys.
/// </summary>
public interface IAttentionRows : IDisposable
{
    /// <summary>Grid height H (rows of pixels).</summary>
    int Height { get; }

    /// <summary>Grid width W.</summary>
    int Width { get; }

    /// <summary>The rows of the pixels in grid rows <c>[gridRow, gridRow + count)</c>: <c>[count·W, H·W]</c> float32 (caller disposes).</summary>
    Tensor Rows(int gridRow, int count);

    /// <summary>Bytes of temporaries one call of <see cref="Rows"/> allocates per grid row it returns (its result included): what chunk sizes are planned with.</summary>
    long BytesPerGridRow { get; }
}

/// <summary>A dense map <c>[H·W, H·W]</c> (or <c>[1, H·W, H·W]</c>) held in memory, read as <see cref="IAttentionRows"/>.</summary>
public sealed class DenseAttentionRows : IAttentionRows
{
    readonly Tensor _map, _given;
    readonly bool _owned;

    /// <summary>Wraps <paramref name="map"/>; with <paramref name="owned"/> this object disposes it.</summary>
    public DenseAttentionRows(Tensor map, int height, int width, bool owned = false)
    {
        ArgumentNullException.ThrowIfNull(map);
        long hw = (long)height * width;
        bool ok = height > 0 && width > 0 && ((map.dim() == 2 && map.shape[0] == hw && map.shape[1] == hw)
               || (map.dim() == 3 && map.shape[0] == 1 && map.shape[1] == hw && map.shape[2] == hw));
        if (!ok)
            throw new ArgumentException($"map {TensorChecks.Shape(map)}: expected [H·W, H·W] or [1, H·W, H·W] with H·W = {height}·{width} = {hw}", nameof(map));
        _given = map;
        _map = map.dim() == 3 ? map.reshape(hw, hw) : map;
        _owned = owned;
        Height = height;
        Width = width;
    }

    public int Height { get; }
    public int Width { get; }

    /// <summary>The whole map <c>[H·W, H·W]</c>.</summary>
    public Tensor Map => _map;

    /// <summary>A view of the map's rows (no copy).</summary>
    public Tensor Rows(int gridRow, int count) => _map.narrow(0, (long)gridRow * Width, (long)count * Width);

    public long BytesPerGridRow => 0;

    /// <summary>Disposes the map when owned.</summary>
    public void Dispose()
    {
        if (!_owned) return;
        if (!ReferenceEquals(_map, _given)) _map.Dispose();
        _given.Dispose();
    }
}
