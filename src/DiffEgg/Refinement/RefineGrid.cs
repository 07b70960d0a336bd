using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Refinement;

/// <summary>Resampling between image, edge-map and working resolutions for Alg 4.</summary>
public static class RefineGrid
{
    /// <summary>Working size: the image's aspect, long side = min(maxSide, edge map's long side, image's long side).</summary>
    public static (int H, int W) WorkSize(int imageW, int imageH, EdgeMap edges, int maxSide)
    {
        int longImg = Math.Max(imageW, imageH);
        int target = Math.Min(maxSide, Math.Min(longImg, Math.Max(edges.Width, edges.Height)));
        double s = (double)target / longImg;
        return (Math.Max(1, (int)Math.Round(imageH * s)), Math.Max(1, (int)Math.Round(imageW * s)));
    }

    /// <summary>Edge map resampled to [h,w]: max-pooling when shrinking (thin edges survive), bilinear when enlarging.</summary>
    public static Tensor EdgesAt(EdgeMap edges, int h, int w)
    {
        using var scope = NewDisposeScope();
        var e = tensor(edges.Values, new long[] { 1, 1, edges.Height, edges.Width });
        if (edges.Height < h || edges.Width < w)
            e = nn.functional.interpolate(e, new long[] { Math.Max(h, edges.Height), Math.Max(w, edges.Width) }, mode: InterpolationMode.Bilinear, align_corners: false);
        if (e.shape[2] != h || e.shape[3] != w)
            e = nn.functional.adaptive_max_pool2d(e, new long[] { h, w });
        // EdgeMap holds values in [0, 1]; bilinear resampling and max pooling keep them there
        return e.reshape(h, w).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Binary masks (N × H×W bytes) as the fraction of each working pixel they cover, [N,h,w].</summary>
    public static Tensor MasksAt(IReadOnlyList<byte[]> masks, int imageH, int imageW, int h, int w)
    {
        using var scope = NewDisposeScope();
        int hw = imageH * imageW;
        var all = new byte[masks.Count * hw];
        for (int n = 0; n < masks.Count; n++)
        {
            var m = masks[n];
            for (int i = 0; i < hw; i++) all[n * hw + i] = m[i] != 0 ? (byte)1 : (byte)0;
        }
        var t = tensor(all, new long[] { masks.Count, 1, imageH, imageW }).to_type(ScalarType.Float32);
        if (imageH != h || imageW != w) t = nn.functional.adaptive_avg_pool2d(t, new long[] { h, w });
        return t.squeeze(1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Soft maps [N,h,w] upsampled bilinearly to the image size and thresholded (≥ <paramref name="threshold"/>) into N byte masks.</summary>
    public static byte[][] UpsampleThreshold(Tensor maps, int imageH, int imageW, float threshold)
    {
        int n = (int)maps.shape[0], hw = imageH * imageW;
        var result = new byte[n][];
        const int chunk = 16; // bounds the float buffer to 16 × H × W
        for (int c0 = 0; c0 < n; c0 += chunk)
        {
            using var scope = NewDisposeScope();
            int cn = Math.Min(chunk, n - c0);
            var up = maps.narrow(0, c0, cn).unsqueeze(1);
            if (up.shape[2] != imageH || up.shape[3] != imageW)
                up = nn.functional.interpolate(up, new long[] { imageH, imageW }, mode: InterpolationMode.Bilinear, align_corners: false);
            using Scalar th = threshold; // kept alive (see EdgesAt)
            var all = up.ge(th).to_type(ScalarType.Byte).contiguous().data<byte>().ToArray();
            for (int i = 0; i < cn; i++) result[c0 + i] = all.AsSpan(i * hw, hw).ToArray();
        }
        return result;
    }

    /// <summary>Bounding boxes (Y0, Y1, X0, X1, end-exclusive) of components 1..Count (index 0 unused, empty).</summary>
    public static (int Y0, int Y1, int X0, int X1)[] ComponentBoxes(ComponentLabels cc)
    {
        var b = new (int Y0, int Y1, int X0, int X1)[cc.Count + 1];
        for (int c = 0; c <= cc.Count; c++) b[c] = (int.MaxValue, int.MinValue, int.MaxValue, int.MinValue);
        for (int y = 0; y < cc.Height; y++)
            for (int x = 0; x < cc.Width; x++)
            {
                int l = cc.Labels[y * cc.Width + x];
                if (l == 0) continue;
                var (y0, y1, x0, x1) = b[l];
                b[l] = (Math.Min(y0, y), Math.Max(y1, y + 1), Math.Min(x0, x), Math.Max(x1, x + 1));
            }
        return b;
    }

    /// <summary>Union of boxes (empty boxes ignored) grown by <paramref name="margin"/> on every side.</summary>
    public static (int Y0, int Y1, int X0, int X1) Grow(IEnumerable<(int Y0, int Y1, int X0, int X1)> boxes, int margin)
    {
        int y0 = int.MaxValue, y1 = int.MinValue, x0 = int.MaxValue, x1 = int.MinValue;
        foreach (var b in boxes)
        {
            if (b.Y1 <= b.Y0 || b.X1 <= b.X0) continue;
            y0 = Math.Min(y0, b.Y0); y1 = Math.Max(y1, b.Y1); x0 = Math.Min(x0, b.X0); x1 = Math.Max(x1, b.X1);
        }
        return y0 > y1 ? (0, 0, 0, 0) : (y0 - margin, y1 + margin, x0 - margin, x1 + margin);
    }

    /// <summary>Bounding box (end-exclusive) of the positive pixels of a row-major [h,w] map.</summary>
    public static (int Y0, int Y1, int X0, int X1) Box(ReadOnlySpan<float> map, int h, int w)
    {
        int y0 = int.MaxValue, y1 = int.MinValue, x0 = int.MaxValue, x1 = int.MinValue;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (map[y * w + x] > 0) { y0 = Math.Min(y0, y); y1 = Math.Max(y1, y + 1); x0 = Math.Min(x0, x); x1 = Math.Max(x1, x + 1); }
        return (y0, y1, x0, x1);
    }

    /// <summary>Binary closing (dilation then erosion with a (2r+1)² square; the erosion ignores pixels outside the image, so closing never removes a pixel) of [N,h,w] (bool or float) as a float map.</summary>
    public static Tensor Close(Tensor m, int r)
    {
        using var scope = NewDisposeScope();
        var f = m.to_type(ScalarType.Float32).unsqueeze(1);
        if (r > 0)
        {
            int k = 2 * r + 1;
            var d = nn.functional.max_pool2d(f, k, 1, r);
            var one = ones_like(d);
            f = one - nn.functional.max_pool2d(one - d, k, 1, r);
        }
        return f.squeeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>Fills holes in place: in each of the n row-major h×w binary maps (&gt; 0 = inside), background pixels not 4-connected to the border become 1.</summary>
    public static void FillHoles(float[] maps, int n, int h, int w)
    {
        var seen = new bool[h * w];
        var stack = new Stack<int>();
        for (int m = 0; m < n; m++)
        {
            int off = m * h * w;
            Array.Clear(seen);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    if ((y == 0 || x == 0 || y == h - 1 || x == w - 1) && maps[off + y * w + x] <= 0 && !seen[y * w + x]) { seen[y * w + x] = true; stack.Push(y * w + x); }
            while (stack.Count > 0)
            {
                int i = stack.Pop(), y = i / w, x = i % w;
                void Visit(int j) { if (!seen[j] && maps[off + j] <= 0) { seen[j] = true; stack.Push(j); } }
                if (x > 0) Visit(i - 1);
                if (x + 1 < w) Visit(i + 1);
                if (y > 0) Visit(i - w);
                if (y + 1 < h) Visit(i + w);
            }
            for (int i = 0; i < h * w; i++)
                if (!seen[i]) maps[off + i] = 1f;
        }
    }

    /// <summary>3×3 binary dilation of [N,h,w] (bool or float) as a float map.</summary>
    public static Tensor Dilate3(Tensor m)
    {
        using var scope = NewDisposeScope();
        var f = m.to_type(ScalarType.Float32).unsqueeze(1);
        return nn.functional.max_pool2d(f, 3, 1, 1).squeeze(1).MoveToOuterDisposeScope();
    }
}
