namespace DiffEgg.Formats;

/// <summary>One entry of a COCO file's <c>images</c>.</summary>
public sealed record CocoImage(long Id, int Width, int Height, string FileName);

/// <summary>One entry of a COCO file's <c>categories</c>; <see cref="IsThing"/> is used by panoptic files (1 = thing, 0 = stuff).</summary>
public sealed record CocoCategory(long Id, string Name, string? Supercategory = null, int IsThing = 1);

/// <summary>How a segmentation is written in JSON (kept so files round-trip).</summary>
public enum CocoSegmentationKind { Polygons, CompressedRle, UncompressedRle }

/// <summary>A COCO <c>segmentation</c>: polygons, or an RLE written compressed (counts string) or uncompressed (counts list).</summary>
public sealed class CocoSegmentation
{
    public CocoSegmentationKind Kind { get; }
    /// <summary>Polygons [x0,y0,x1,y1,...] when <see cref="Kind"/> is Polygons.</summary>
    public IReadOnlyList<double[]>? Polygons { get; }
    /// <summary>The mask when <see cref="Kind"/> is an RLE kind.</summary>
    public Rle? Rle { get; }

    CocoSegmentation(CocoSegmentationKind kind, IReadOnlyList<double[]>? polygons, Rle? rle)
    {
        Kind = kind; Polygons = polygons; Rle = rle;
    }

    /// <summary>A polygon segmentation.</summary>
    public static CocoSegmentation FromPolygons(IReadOnlyList<double[]> polygons) => new(CocoSegmentationKind.Polygons, polygons, null);

    /// <summary>An RLE segmentation, written as a counts string (compressed, default) or a counts list.</summary>
    public static CocoSegmentation FromRle(Rle rle, bool compressed = true) =>
        new(compressed ? CocoSegmentationKind.CompressedRle : CocoSegmentationKind.UncompressedRle, null, rle);

    /// <summary>The mask at the image size, as pycocotools annToRLE (polygons rasterised with frPoly and merged).</summary>
    public Rle ToRle(int height, int width)
    {
        if (Rle != null)
        {
            if (Rle.Height != height || Rle.Width != width)
                throw new ArgumentException($"RLE size [{Rle.Height}, {Rle.Width}] differs from the image size [{height}, {width}]");
            return Rle;
        }
        return Formats.Rle.FromPolygons(Polygons!, height, width);
    }
}

/// <summary>One ground-truth instance (<c>annotations[]</c> of a COCO instances file).</summary>
public sealed class CocoAnnotation
{
    public long Id { get; init; }
    public long ImageId { get; init; }
    public long CategoryId { get; init; }
    public CocoSegmentation? Segmentation { get; init; }
    /// <summary>[x, y, w, h] or null when the file has none.</summary>
    public double[]? Bbox { get; init; }
    /// <summary>The stored <c>area</c> (pycocotools filters gt by this value, not by the mask's pixel count).</summary>
    public double Area { get; init; }
    public int IsCrowd { get; init; }
}

/// <summary>A COCO instances dataset: images, annotations, categories.</summary>
public sealed class CocoDataset
{
    public List<CocoImage> Images { get; init; } = new();
    public List<CocoAnnotation> Annotations { get; init; } = new();
    public List<CocoCategory> Categories { get; init; } = new();

    Dictionary<long, CocoImage>? _byId;
    /// <summary>Image by id (built on first use).</summary>
    public CocoImage? FindImage(long id)
    {
        _byId ??= Images.GroupBy(i => i.Id).ToDictionary(g => g.Key, g => g.First());
        return _byId.TryGetValue(id, out var im) ? im : null;
    }
}

/// <summary>One detection of a COCO results file: <c>{image_id, category_id, segmentation or bbox, score}</c>.</summary>
public sealed class CocoResult
{
    public long ImageId { get; init; }
    public long CategoryId { get; init; }
    public double Score { get; init; }
    public CocoSegmentation? Segmentation { get; init; }
    public double[]? Bbox { get; init; }
}
