using System.Text.Json;
using DiffEgg.Common;

namespace DiffEgg.Formats;

/// <summary>Reads and writes COCO instances ground truth and COCO results JSON, strictly (one clear error per defect) and atomically.</summary>
public static class CocoFiles
{
    // ------------------------------------------------------------------ instances ground truth

    /// <summary>Reads a COCO instances file (<c>images</c>, <c>annotations</c> with polygons / compressed or uncompressed RLE, <c>categories</c>).</summary>
    public static CocoDataset ReadInstances(string path)
    {
        var bytes = JsonRead.ReadBytes(path);
        return CocoFastRead.TryReadInstances(bytes) ?? ReadInstancesStrict(path, bytes);
    }

    /// <summary>The JsonDocument reader: the reference for what is accepted, and the one whose errors name file, record and field.</summary>
    internal static CocoDataset ReadInstancesStrict(string path, byte[] bytes)
    {
        using var doc = JsonRead.Parse(path, bytes);
        var r = new JsonRead(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: expected a JSON object with images, annotations and categories");
        var ds = new CocoDataset();
        ReadImages(r, root, ds.Images);
        ReadCategories(r, root, ds.Categories);
        var images = new Dictionary<long, CocoImage>();
        foreach (var im in ds.Images) images[im.Id] = im;
        var annIds = new HashSet<long>();
        int i = 0;
        foreach (var a in r.Array(root, "annotations", "top level").EnumerateArray())
        {
            string rec = $"annotations[{i}]";
            long id = r.Int64(a, "id", rec);
            rec = $"annotations[{i}] (id {id})";
            if (!annIds.Add(id)) throw r.Error(rec, "id", $"duplicate annotation id {id}");
            long imageId = r.Int64(a, "image_id", rec);
            if (!images.TryGetValue(imageId, out var img)) throw r.Error(rec, "image_id", $"image id {imageId} is not in 'images'");
            long cat = r.Int64(a, "category_id", rec);
            CocoSegmentation? seg = r.TryGet(a, "segmentation", out var s) ? ReadSegmentation(r, s, rec, img) : null;
            double[]? bbox = r.TryGet(a, "bbox", out var b) ? r.DoubleArray(b, "bbox", rec, 4) : null;
            ds.Annotations.Add(new CocoAnnotation
            {
                Id = id, ImageId = imageId, CategoryId = cat, Segmentation = seg, Bbox = bbox,
                Area = r.Double(a, "area", rec), IsCrowd = r.Flag(a, "iscrowd", rec),
            });
            i++;
        }
        return ds;
    }

    internal static void ReadImages(JsonRead r, JsonElement root, List<CocoImage> into)
    {
        var seen = new HashSet<long>();
        int i = 0;
        foreach (var e in r.Array(root, "images", "top level").EnumerateArray())
        {
            string rec = $"images[{i}]";
            long id = r.Int64(e, "id", rec);
            rec = $"images[{i}] (id {id})";
            if (!seen.Add(id)) throw r.Error(rec, "id", $"duplicate image id {id}");
            int w = r.Int32(e, "width", rec), h = r.Int32(e, "height", rec);
            if (w <= 0) throw r.Error(rec, "width", $"must be positive, got {w}");
            if (h <= 0) throw r.Error(rec, "height", $"must be positive, got {h}");
            into.Add(new CocoImage(id, w, h, r.OptString(e, "file_name", rec) ?? ""));
            i++;
        }
    }

    internal static void ReadCategories(JsonRead r, JsonElement root, List<CocoCategory> into) =>
        ReadCategoryArray(r, r.Array(root, "categories", "top level"), "categories", into);

    /// <summary>Reads a JSON array of COCO categories (id, name, supercategory, isthing); records are named <c>prefix[i] (id N)</c>.</summary>
    internal static void ReadCategoryArray(JsonRead r, JsonElement array, string prefix, List<CocoCategory> into)
    {
        var seen = new HashSet<long>();
        int i = 0;
        foreach (var e in array.EnumerateArray())
        {
            string rec = $"{prefix}[{i}]";
            long id = r.Int64(e, "id", rec);
            rec = $"{prefix}[{i}] (id {id})";
            if (!seen.Add(id)) throw r.Error(rec, "id", $"duplicate category id {id}");
            string name = r.TryGet(e, "name", out _) ? r.String(e, "name", rec) : id.ToString();
            int isThing = r.TryGet(e, "isthing", out _) ? r.Flag(e, "isthing", rec) : 1;
            into.Add(new CocoCategory(id, name, r.OptString(e, "supercategory", rec), isThing));
            i++;
        }
    }

    /// <summary>Parses a segmentation value; RLE size must match the image.</summary>
    internal static CocoSegmentation ReadSegmentation(JsonRead r, JsonElement s, string rec, CocoImage img)
    {
        if (s.ValueKind == JsonValueKind.Array)
        {
            var polys = new List<double[]>();
            int j = 0;
            foreach (var p in s.EnumerateArray())
            {
                var poly = r.DoubleArray(p, $"segmentation[{j}]", rec);
                polys.Add(poly);
                j++;
            }
            if (polys.Count == 0) throw r.Error(rec, "segmentation", "empty polygon list");
            if (polys[0].Length < 4) throw r.Error(rec, "segmentation[0]", $"a polygon needs at least 3 points, got {polys[0].Length} numbers");
            if (polys[0].Length == 4)
                for (int k = 1; k < polys.Count; k++)
                    if (polys[k].Length != 4) throw r.Error(rec, $"segmentation[{k}]", "the first entry has 4 numbers, so pycocotools reads every entry as a box [x, y, w, h]; this one is not");
            return CocoSegmentation.FromPolygons(polys);
        }
        if (s.ValueKind != JsonValueKind.Object) throw r.Error(rec, "segmentation", "expected a polygon list or an RLE object {size, counts}");
        var size = r.DoubleArray(r.Required(s, "size", rec), "segmentation.size", rec, 2);
        if (size[0] != Math.Floor(size[0]) || size[1] != Math.Floor(size[1]) || size[0] < 0 || size[1] < 0)
            throw r.Error(rec, "segmentation.size", $"expected [height, width] integers, got [{size[0]}, {size[1]}]");
        int h = (int)size[0], w = (int)size[1];
        if (h != img.Height || w != img.Width)
            throw r.Error(rec, "segmentation.size", $"[{h}, {w}] differs from image {img.Id}'s size [{img.Height}, {img.Width}] (height, width)");
        var c = r.Required(s, "counts", rec);
        if (c.ValueKind == JsonValueKind.String)
        {
            try { return CocoSegmentation.FromRle(Rle.FromCompressedString(c.GetString()!, h, w), compressed: true); }
            catch (ArgumentException e) { throw r.Error(rec, "segmentation.counts", e.Message); }
        }
        if (c.ValueKind == JsonValueKind.Array)
        {
            var counts = new uint[c.GetArrayLength()];
            int j = 0;
            foreach (var e in c.EnumerateArray())
            {
                long v = r.AsInt64(e, $"segmentation.counts[{j}]", rec);
                if (v < 0 || v > uint.MaxValue) throw r.Error(rec, $"segmentation.counts[{j}]", $"run length {v} out of range");
                counts[j++] = (uint)v;
            }
            try { return CocoSegmentation.FromRle(new Rle(h, w, counts), compressed: false); }
            catch (ArgumentException e) { throw r.Error(rec, "segmentation.counts", e.Message); }
        }
        throw r.Error(rec, "segmentation.counts", "expected a string (compressed RLE) or a list of run lengths");
    }

    /// <summary>Writes a COCO instances file atomically.</summary>
    public static void WriteInstances(string path, CocoDataset ds)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream);
            w.WriteStartObject();
            WriteImages(w, ds.Images);
            w.WriteStartArray("annotations");
            foreach (var a in ds.Annotations)
            {
                w.WriteStartObject();
                w.WriteNumber("id", a.Id);
                w.WriteNumber("image_id", a.ImageId);
                w.WriteNumber("category_id", a.CategoryId);
                if (a.Segmentation != null) { w.WritePropertyName("segmentation"); WriteSegmentation(w, a.Segmentation); }
                if (a.Bbox != null) WriteNumbers(w, "bbox", a.Bbox);
                w.WriteNumber("area", a.Area);
                w.WriteNumber("iscrowd", a.IsCrowd);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            WriteCategories(w, ds.Categories, withIsThing: false);
            w.WriteEndObject();
        });
    }

    internal static void WriteImages(Utf8JsonWriter w, IEnumerable<CocoImage> images)
    {
        w.WriteStartArray("images");
        foreach (var im in images)
        {
            w.WriteStartObject();
            w.WriteNumber("id", im.Id);
            w.WriteNumber("width", im.Width);
            w.WriteNumber("height", im.Height);
            w.WriteString("file_name", im.FileName);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    internal static void WriteCategories(Utf8JsonWriter w, IEnumerable<CocoCategory> cats, bool withIsThing)
    {
        w.WriteStartArray("categories");
        foreach (var c in cats)
        {
            w.WriteStartObject();
            w.WriteNumber("id", c.Id);
            w.WriteString("name", c.Name);
            if (c.Supercategory != null) w.WriteString("supercategory", c.Supercategory);
            if (withIsThing) w.WriteNumber("isthing", c.IsThing);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    internal static void WriteNumbers(Utf8JsonWriter w, string name, double[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    /// <summary>Writes a segmentation value in its kind (polygons, counts string, counts list).</summary>
    internal static void WriteSegmentation(Utf8JsonWriter w, CocoSegmentation s)
    {
        if (s.Kind == CocoSegmentationKind.Polygons)
        {
            w.WriteStartArray();
            foreach (var p in s.Polygons!)
            {
                w.WriteStartArray();
                foreach (var v in p) w.WriteNumberValue(v);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            return;
        }
        var rle = s.Rle!;
        w.WriteStartObject();
        w.WriteStartArray("size");
        w.WriteNumberValue(rle.Height);
        w.WriteNumberValue(rle.Width);
        w.WriteEndArray();
        if (s.Kind == CocoSegmentationKind.CompressedRle) w.WriteString("counts", rle.ToCompressedString());
        else
        {
            w.WriteStartArray("counts");
            foreach (var c in rle.Counts) w.WriteNumberValue(c);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    // ------------------------------------------------------------------ results

    /// <summary>
    /// Reads a COCO results file (a list of <c>{image_id, category_id, segmentation or bbox, score}</c>); every image id must be in
    /// <paramref name="gt"/>, which errors call <paramref name="imagesName"/> (e.g. "the 'images' of --image-info x.json" where it is not a ground truth).
    /// </summary>
    public static List<CocoResult> ReadResults(string path, CocoDataset gt, string imagesName = "the ground truth")
    {
        var bytes = JsonRead.ReadBytes(path);
        return CocoFastRead.TryReadResults(bytes, gt) ?? ReadResultsStrict(path, bytes, gt, imagesName);
    }

    /// <summary>The JsonDocument reader of results: the reference for what is accepted, and the one whose errors name file, record and field.</summary>
    internal static List<CocoResult> ReadResultsStrict(string path, byte[] bytes, CocoDataset gt, string imagesName = "the ground truth")
    {
        using var doc = JsonRead.Parse(path, bytes);
        var r = new JsonRead(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Array) throw new DiffEggException($"{path}: expected a JSON list of results {{image_id, category_id, segmentation or bbox, score}}");
        var list = new List<CocoResult>(root.GetArrayLength());
        int i = 0;
        foreach (var e in root.EnumerateArray()) list.Add(ReadResult(r, e, i++, gt, imagesName));
        return list;
    }

    static CocoResult ReadResult(JsonRead r, JsonElement e, int i, CocoDataset gt, string imagesName)
    {
        string rec = $"result [{i}]";
        long imageId = r.Int64(e, "image_id", rec);
        var img = gt.FindImage(imageId) ?? throw r.Error(rec, "image_id", $"image id {imageId} is not in {imagesName}");
        long cat = r.Int64(e, "category_id", rec);
        double score = r.Double(e, "score", rec);
        CocoSegmentation? seg = r.TryGet(e, "segmentation", out var s) ? ReadSegmentation(r, s, rec, img) : null;
        double[]? bbox = r.TryGet(e, "bbox", out var b) ? r.DoubleArray(b, "bbox", rec, 4) : null;
        if (seg == null && bbox == null) throw r.Error(rec, "segmentation", "missing (a result needs a segmentation or a bbox)");
        return new CocoResult { ImageId = imageId, CategoryId = cat, Score = score, Segmentation = seg, Bbox = bbox };
    }

    /// <summary>Writes a COCO results file atomically (segmentations keep their kind; RLE is normally compressed).</summary>
    public static void WriteResults(string path, IEnumerable<CocoResult> results)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream);
            w.WriteStartArray();
            foreach (var d in results)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", d.ImageId);
                w.WriteNumber("category_id", d.CategoryId);
                if (d.Segmentation != null) { w.WritePropertyName("segmentation"); WriteSegmentation(w, d.Segmentation); }
                if (d.Bbox != null) WriteNumbers(w, "bbox", d.Bbox);
                w.WriteNumber("score", d.Score);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }
}
