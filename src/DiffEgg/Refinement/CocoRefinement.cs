using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Refinement;

/// <summary>
/// The library entry point of instance refinement (Alg 4) on COCO files: COCO results of an image + its edge map → refined COCO results.
/// The <c>refine</c> command, the demo and the benchmarks all go through here.
/// </summary>
public static class CocoRefinement
{
    /// <summary>
    /// Refines the results of one image: segmentations (polygons, RLE) are decoded at the image size, refined with
    /// <see cref="InstanceRefiner.Refine"/> and written back as compressed RLE with <c>bbox</c>; box-only results pass through unchanged.
    /// </summary>
    public static List<CocoResult> RefineImage(CocoImage image, IReadOnlyList<CocoResult> results, EdgeMap edges, RefineOptions? options = null)
    {
        var masks = new List<InstanceMask>();
        var output = new List<CocoResult>();
        foreach (var r in results)
        {
            if (r.ImageId != image.Id) throw new ArgumentException($"result for image {r.ImageId} passed with image {image.Id}");
            if (r.Segmentation is null) { output.Add(r); continue; } // box-only results cannot be refined
            if (r.CategoryId < int.MinValue || r.CategoryId > int.MaxValue) throw new DiffEggException($"image {image.Id}: category id {r.CategoryId} is out of range");
            masks.Add(new InstanceMask(image.Width, image.Height, r.Segmentation.ToRle(image.Height, image.Width).Decode(), (int)r.CategoryId, r.Score));
        }
        foreach (var m in InstanceRefiner.Refine(edges, masks, options))
            output.Add(ToResult(image.Id, m));
        return output;
    }

    /// <summary>
    /// Refines the results of many images: <paramref name="edgesOf"/> gives each image's edge map; the output keeps the image order of
    /// <paramref name="images"/>. An image whose refinement throws a <see cref="DiffEggException"/> (bad input) is reported to
    /// <paramref name="onFailure"/> and left out; <paramref name="onImage"/> is called after every image.
    /// </summary>
    public static List<CocoResult> Refine(IReadOnlyList<CocoImage> images, IReadOnlyList<CocoResult> results, Func<CocoImage, EdgeMap> edgesOf,
        RefineOptions? options = null, Action<CocoImage, DiffEggException>? onFailure = null, Action<CocoImage>? onImage = null)
    {
        var byImage = results.GroupBy(r => r.ImageId).ToDictionary(g => g.Key, g => g.ToList());
        var output = new List<CocoResult>();
        foreach (var image in images)
        {
            if (!byImage.TryGetValue(image.Id, out var list)) { onImage?.Invoke(image); continue; }
            try { output.AddRange(RefineImage(image, list, edgesOf(image), options)); }
            catch (DiffEggException e) when (onFailure is not null) { onFailure(image, e); }
            onImage?.Invoke(image);
        }
        return output;
    }

    /// <summary>A mask as a COCO result (compressed RLE + bbox).</summary>
    public static CocoResult ToResult(long imageId, InstanceMask m)
    {
        var rle = Rle.Encode(m.Pixels, m.Height, m.Width);
        return new CocoResult
        {
            ImageId = imageId, CategoryId = m.CategoryId, Score = m.Score,
            Segmentation = CocoSegmentation.FromRle(rle), Bbox = rle.ToBbox(),
        };
    }
}
