namespace DiffEgg.Refinement;

/// <summary>A binary instance mask at image resolution (row-major, 1 = inside) with its category and score.</summary>
public sealed class InstanceMask
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }
    public int CategoryId { get; set; }
    public double Score { get; set; }

    public InstanceMask(int width, int height, byte[] pixels, int categoryId = 1, double score = 1.0)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"mask size {width}x{height} must be positive");
        if (pixels.Length != width * height) throw new ArgumentException($"mask has {pixels.Length} pixels, expected {width}x{height} = {width * height}");
        Width = width; Height = height; Pixels = pixels; CategoryId = categoryId; Score = score;
    }

    /// <summary>Number of pixels inside the mask.</summary>
    public long Area
    {
        get { long a = 0; foreach (var p in Pixels) if (p != 0) a++; return a; }
    }

    /// <summary>Intersection over union with another mask of the same size.</summary>
    public double IoU(InstanceMask other)
    {
        if (other.Width != Width || other.Height != Height) throw new ArgumentException($"mask sizes differ: {Width}x{Height} vs {other.Width}x{other.Height}");
        long inter = 0, uni = 0;
        for (int i = 0; i < Pixels.Length; i++)
        {
            bool a = Pixels[i] != 0, b = other.Pixels[i] != 0;
            if (a && b) inter++;
            if (a || b) uni++;
        }
        return uni == 0 ? 0 : (double)inter / uni;
    }
}
