using DiffEgg.Common;
using DiffEgg.Data;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DiffEgg.Edges;

/// <summary>How colour channels are combined in <see cref="SobelEdges"/>.</summary>
public enum SobelChannels
{
    /// <summary>Gradient magnitude of the luma Y = 0.299 R + 0.587 G + 0.114 B.</summary>
    Grey,
    /// <summary>Per-pixel maximum of the three per-channel gradient magnitudes.</summary>
    MaxChannel,
}

/// <summary>Classical baseline edge map: optional Gaussian blur, then the Sobel gradient magnitude (replicate padding, values in 0..1 units).</summary>
public static class SobelEdges
{
    /// <summary>Sobel gradient magnitude of an image [C,H,W] → [H,W] or [N,C,H,W] → [N,1,H,W] (C = 1 or 3), after a Gaussian blur of σ = <paramref name="blurSigma"/> (0 = none).</summary>
    public static Tensor Compute(Tensor image, double blurSigma = 0, SobelChannels channels = SobelChannels.Grey)
    {
        TorchRuntime.EnsureLoaded();
        if (image.dim() != 3 && image.dim() != 4) throw new ArgumentException($"image tensor has shape [{string.Join(",", image.shape)}], expected [C,H,W] or [N,C,H,W]");
        if (blurSigma < 0 || double.IsNaN(blurSigma)) throw new ArgumentException($"blur sigma {blurSigma} must be >= 0");
        bool batched = image.dim() == 4;
        using var scope = torch.NewDisposeScope();
        var x = (batched ? image : image.unsqueeze(0)).to_type(ScalarType.Float32);
        long c = x.shape[1];
        if (channels == SobelChannels.Grey)
        {
            if (c == 3)
            {
                var wts = torch.tensor(new float[] { 0.299f, 0.587f, 0.114f }).reshape(1, 3, 1, 1);
                x = (x * wts).sum(1, keepdim: true);
            }
            else if (c != 1) throw new ArgumentException($"image tensor has {c} channels, expected 1 or 3");
            c = 1;
        }
        if (blurSigma > 0) x = GaussianBlur(x, blurSigma);
        var kx = torch.tensor(new float[] { -1, 0, 1, -2, 0, 2, -1, 0, 1 }).reshape(1, 1, 3, 3).repeat(c, 1, 1, 1);
        var ky = kx.transpose(2, 3);
        var padded = F.pad(x, new long[] { 1, 1, 1, 1 }, PaddingModes.Replicate);
        var gx = F.conv2d(padded, kx, groups: c);
        var gy = F.conv2d(padded, ky, groups: c);
        var mag = (gx * gx + gy * gy).sqrt();
        if (c > 1) mag = mag.amax(new long[] { 1 }, keepdim: true);
        var result = batched ? mag : mag[0, 0];
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Sobel gradient magnitude of an 8-bit RGB image (scaled to 0..1) as a row-major float map [H*W].</summary>
    public static float[] Compute(RgbImage image, double blurSigma = 0, SobelChannels channels = SobelChannels.Grey)
    {
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        var t = torch.tensor(image.Pixels, new long[] { image.Height, image.Width, 3 }).permute(2, 0, 1).to_type(ScalarType.Float32) / 255f;
        return Compute(t, blurSigma, channels).data<float>().ToArray();
    }

    /// <summary>Separable Gaussian blur (kernel radius ⌈3σ⌉, normalised, replicate padding) of [N,C,H,W].</summary>
    public static Tensor GaussianBlur(Tensor x, double sigma)
    {
        int r = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        var k = new float[2 * r + 1];
        double sum = 0;
        for (int i = -r; i <= r; i++) { k[i + r] = (float)Math.Exp(-0.5 * i * i / (sigma * sigma)); sum += k[i + r]; }
        for (int i = 0; i < k.Length; i++) k[i] = (float)(k[i] / sum);
        long c = x.shape[1];
        using var scope = torch.NewDisposeScope();
        var kh = torch.tensor(k).reshape(1, 1, 1, 2 * r + 1).repeat(c, 1, 1, 1);
        var kv = kh.transpose(2, 3);
        var y = F.conv2d(F.pad(x, new long[] { r, r, 0, 0 }, PaddingModes.Replicate), kh, groups: c);
        y = F.conv2d(F.pad(y, new long[] { 0, 0, r, r }, PaddingModes.Replicate), kv, groups: c);
        return y.MoveToOuterDisposeScope();
    }
}
