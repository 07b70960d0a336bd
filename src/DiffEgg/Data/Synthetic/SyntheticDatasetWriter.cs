using System.Globalization;
using System.Text;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Formats;

namespace DiffEgg.Data.Synthetic;

/// <summary>Generates a range of scenes of one split and writes the whole folder (PNGs + instances.json, panoptic.json, hard_pairs.json).</summary>
public static class SyntheticDatasetWriter
{
    /// <param name="Failed">Scenes whose files could not be written ("stem: reason"); they are left out of the JSON files.</param>
    public sealed record Summary(int Scenes, int Instances, int ScenesWithHardPair, int HardPairs, IReadOnlyList<string> Failed);

    /// <summary>Writes scenes start..start+count−1 of <paramref name="split"/> into <paramref name="dir"/>; sequential, so output bytes depend only on the arguments.</summary>
    public static Summary Write(string dir, SceneOptions options, long seed, SyntheticSplit split, int start, int count, Action<int>? progress = null)
    {
        var gen = new SceneGenerator(options);
        return Write(dir, options, seed, split, start, count, index => gen.Generate(seed, split, index), progress);
    }

    /// <summary>As above with another scene source: <paramref name="sceneAt"/>(index) renders scene index of the split (e.g. the stress style); <paramref name="options"/> only fills hard_pairs.json's header.</summary>
    public static Summary Write(string dir, SceneOptions options, long seed, SyntheticSplit split, int start, int count, Func<int, Scene> sceneAt, Action<int>? progress = null)
    {
        if (File.Exists(dir)) throw new DiffEggException($"{dir}: exists and is a file, not a folder");
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new DiffEggException($"{dir}: cannot create the output folder ({e.Message})", e); }
        var entries = new List<(string Stem, int ImageId, Scene Scene)>();
        int instances = 0, withHard = 0, hardPairs = 0;
        var failed = new List<string>();
        for (int i = 0; i < count; i++)
        {
            int index = start + i;
            var scene = sceneAt(index);
            string stem = SyntheticDataset.FileStem(split, index);
            try { SyntheticDataset.WriteScenePngs(dir, stem, scene); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DiffEggException)
            {
                failed.Add(e.Message.Contains(stem, StringComparison.Ordinal) ? e.Message : $"{stem}: {e.Message}");
                progress?.Invoke(i + 1);
                continue;
            }
            entries.Add((stem, SyntheticDataset.ImageId(split, index), scene));
            instances += scene.Instances.Count;
            if (scene.HardPairs.Count > 0) withHard++;
            hardPairs += scene.HardPairs.Count;
            progress?.Invoke(i + 1);
        }
        if (entries.Count == 0) return new Summary(0, 0, 0, 0, failed); // nothing valid: the JSON files of an earlier run stay as they were
        WriteInstances(Path.Combine(dir, "instances.json"), entries);
        WritePanoptic(Path.Combine(dir, "panoptic.json"), entries);
        WriteHardPairs(Path.Combine(dir, "hard_pairs.json"), entries, seed, split, options);
        return new Summary(entries.Count, instances, withHard, hardPairs, failed);
    }

    static double[] Box(PixelBox b) => new double[] { b.X, b.Y, b.Width, b.Height };

    static CocoImage Image(string stem, int imageId, Scene s) => new(imageId, s.Width, s.Height, stem + ".png");

    static List<CocoCategory> Categories(bool thingsOnly) => SyntheticCategories.All
        .Where(c => c.IsThing || !thingsOnly)
        .Select(c => new CocoCategory(c.Id, c.Name, c.Supercategory, c.IsThing ? 1 : 0)).ToList();

    /// <summary>instances.json: COCO instances GT; one annotation per visible thing, segmentation as compressed RLE of its pixels.</summary>
    static void WriteInstances(string path, List<(string Stem, int ImageId, Scene Scene)> entries)
    {
        var ds = new CocoDataset { Categories = Categories(thingsOnly: true) };
        foreach (var (stem, imageId, scene) in entries)
        {
            ds.Images.Add(Image(stem, imageId, scene));
            foreach (var inst in scene.Instances)
                ds.Annotations.Add(new CocoAnnotation
                {
                    Id = AnnotationId(imageId, inst.SegmentId), ImageId = imageId, CategoryId = inst.CategoryId,
                    Segmentation = CocoSegmentation.FromRle(Rle.EncodeLabel(scene.SegmentMap, scene.Height, scene.Width, inst.SegmentId)),
                    Bbox = Box(inst.BBox), Area = inst.Area, IsCrowd = 0,
                });
        }
        CocoFiles.WriteInstances(path, ds);
    }

    /// <summary>panoptic.json: COCO panoptic GT; things one segment each, stuff one segment per stuff category present; PNGs in panoptic/.</summary>
    static void WritePanoptic(string path, List<(string Stem, int ImageId, Scene Scene)> entries)
    {
        var ds = new PanopticDataset { Categories = Categories(thingsOnly: false) };
        foreach (var (stem, imageId, scene) in entries)
        {
            ds.Images.Add(Image(stem, imageId, scene));
            var segs = scene.Instances.Select(i => new PanopticSegment { Id = i.SegmentId, CategoryId = i.CategoryId, Area = i.Area, IsCrowd = 0, Bbox = Box(i.BBox) })
                .Concat(scene.Stuff.Select(t => new PanopticSegment { Id = t.SegmentId, CategoryId = t.CategoryId, Area = t.Area, IsCrowd = 0, Bbox = Box(t.BBox) }))
                .ToList();
            ds.Annotations.Add(new PanopticAnnotation { ImageId = imageId, FileName = stem + ".png", Segments = segs });
        }
        PanopticFiles.WriteJson(path, ds);
    }

    static string TextureName(ThingTexture t) => t.ToString().ToLowerInvariant();

    /// <summary>hard_pairs.json: per image the hard pairs as panoptic segment ids and instance annotation ids, with ΔE76 and textures.</summary>
    static void WriteHardPairs(string path, List<(string Stem, int ImageId, Scene Scene)> entries, long seed, SyntheticSplit split, SceneOptions o)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("delta_e", "CIE76 (Euclidean distance in CIE L*a*b*, D65) between the two base colours");
            w.WriteNumber("delta_e_threshold", o.HardDeltaE);
            w.WriteNumber("min_contact", o.MinContact);
            w.WriteString("split", SyntheticDataset.SplitName(split));
            w.WriteNumber("seed", seed);
            w.WriteStartArray("images");
            foreach (var (stem, imageId, scene) in entries)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", imageId);
                w.WriteString("file_name", stem + ".png");
                w.WriteBoolean("designed", scene.HardPairDesigned);
                w.WriteStartArray("pairs");
                foreach (var p in scene.HardPairs)
                {
                    w.WriteStartObject();
                    w.WriteStartArray("annotation_ids"); w.WriteNumberValue(AnnotationId(imageId, p.SegmentIdA)); w.WriteNumberValue(AnnotationId(imageId, p.SegmentIdB)); w.WriteEndArray();
                    w.WriteStartArray("segment_ids"); w.WriteNumberValue(p.SegmentIdA); w.WriteNumberValue(p.SegmentIdB); w.WriteEndArray();
                    w.WritePropertyName("delta_e"); w.WriteRawValue(Math.Round(p.DeltaE, 3).ToString("0.###", CultureInfo.InvariantCulture));
                    w.WriteStartArray("textures"); w.WriteStringValue(TextureName(p.TextureA)); w.WriteStringValue(TextureName(p.TextureB)); w.WriteEndArray();
                    w.WriteNumber("contact", p.ContactLength);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    /// <summary>Instance annotation id of thing segment k (1-based) of an image: image_id · 100 + k (at most 32 things per scene).</summary>
    public static long AnnotationId(int imageId, int segmentId) => (long)imageId * 100 + segmentId;
}
