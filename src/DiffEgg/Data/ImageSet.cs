using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Data;

/// <summary>One image of a folder with its COCO image entry.</summary>
public sealed record ImageEntry(CocoImage Image, string Path);

/// <summary>
/// The one rule that gives the images of a plain folder their COCO ids: with an image list (any COCO JSON whose <c>images</c> map ids
/// to file names, as <c>refine --image-info</c> reads it) every image file of the folder needs an entry; without one, ids are
/// 1..n in ordinal file-name order. Sizes are read from the files (and must match the list's).
/// </summary>
public static class ImageSet
{
    /// <summary>The folder's images in id order; <see cref="DiffEggException"/> naming the file or entry on any mismatch.</summary>
    public static List<ImageEntry> Resolve(string imagesDir, string? imageInfo)
    {
        if (!Directory.Exists(imagesDir)) throw new DiffEggException($"--images {imagesDir}: no such folder");
        var files = ImageIO.ListImages(imagesDir);
        if (files.Count == 0) throw new DiffEggException($"--images {imagesDir}: no images found ({string.Join(", ", ImageIO.ImageExtensions)})");
        var entries = new List<ImageEntry>();
        if (string.IsNullOrWhiteSpace(imageInfo))
        {
            for (int i = 0; i < files.Count; i++)
            {
                var (w, h) = ImageIO.ReadSize(files[i]);
                entries.Add(new ImageEntry(new CocoImage(i + 1, w, h, System.IO.Path.GetFileName(files[i])), files[i]));
            }
            return entries;
        }
        var byName = new Dictionary<string, CocoImage>(StringComparer.Ordinal);
        foreach (var im in Formats.CocoMetadataFiles.ReadImageInfo(imageInfo))
            byName.TryAdd(System.IO.Path.GetFileName(im.FileName), im);
        foreach (var f in files)
        {
            string name = System.IO.Path.GetFileName(f);
            if (!byName.TryGetValue(name, out var im)) throw new DiffEggException($"{imageInfo}: no entry in 'images' for {name} (every image of --images needs one)");
            var (w, h) = ImageIO.ReadSize(f);
            if (w != im.Width || h != im.Height) throw new DiffEggException($"{f}: image is {w}x{h} but {imageInfo} says {im.Width}x{im.Height}");
            entries.Add(new ImageEntry(im, f));
        }
        return entries.OrderBy(e => e.Image.Id).ToList();
    }

    /// <summary>Writes the image list as a COCO JSON (<c>images</c>, no annotations, one category 1 "object") atomically.</summary>
    public static void Write(string path, IEnumerable<CocoImage> images) =>
        CocoFiles.WriteInstances(path, new CocoDataset { Images = images.ToList(), Categories = { new CocoCategory(1, "object") } });

    /// <summary>RESULTS.json → RESULTS.images.json (the image list written beside a results file).</summary>
    public static string ListPathFor(string resultsPath)
    {
        string dir = System.IO.Path.GetDirectoryName(resultsPath) ?? "";
        string stem = resultsPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? System.IO.Path.GetFileNameWithoutExtension(resultsPath) : System.IO.Path.GetFileName(resultsPath);
        return System.IO.Path.Combine(dir, stem + ".images.json");
    }
}
