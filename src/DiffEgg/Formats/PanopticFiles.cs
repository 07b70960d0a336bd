using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Data;

namespace DiffEgg.Formats;

/// <summary>One entry of <c>segments_info</c>: a segment id as stored in the PNG (R + 256·G + 256²·B) and its category.</summary>
public sealed class PanopticSegment
{
    public long Id { get; init; }
    public long CategoryId { get; init; }
    /// <summary>The stored <c>area</c> (panopticapi uses the ground truth's stored value in the IoU union); null when absent.</summary>
    public double? Area { get; init; }
    public int IsCrowd { get; init; }
    public double[]? Bbox { get; init; }
}

/// <summary>One entry of a panoptic file's <c>annotations</c>: an image, its PNG and its segments.</summary>
public sealed class PanopticAnnotation
{
    public long ImageId { get; init; }
    public string FileName { get; init; } = "";
    public List<PanopticSegment> Segments { get; init; } = new();
}

/// <summary>A COCO panoptic dataset (JSON side); the PNGs live in a folder next to it.</summary>
public sealed class PanopticDataset
{
    public List<CocoImage> Images { get; init; } = new();
    public List<PanopticAnnotation> Annotations { get; init; } = new();
    public List<CocoCategory> Categories { get; init; } = new();
}

/// <summary>COCO panoptic JSON + PNG reading/writing (id = R + 256·G + 256²·B, 0 = void) and VOC-style class-id PNGs.</summary>
public static class PanopticFiles
{
    /// <summary>Largest segment id a panoptic PNG can hold (three 8-bit channels).</summary>
    public const int MaxSegmentId = (1 << 24) - 1;

    /// <summary>Reads a panoptic JSON (<c>annotations[].segments_info</c>, <c>categories</c> with <c>isthing</c>; <c>images</c> optional). For ground truth, each segment needs <c>area</c> and <c>iscrowd</c>.</summary>
    public static PanopticDataset ReadJson(string path, bool groundTruth)
    {
        using var doc = JsonRead.Parse(path);
        var r = new JsonRead(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: expected a JSON object with annotations and categories");
        var ds = new PanopticDataset();
        if (r.TryGet(root, "images", out _)) CocoFiles.ReadImages(r, root, ds.Images);
        if (groundTruth || r.TryGet(root, "categories", out _)) CocoFiles.ReadCategories(r, root, ds.Categories);
        var seenImages = new HashSet<long>();
        int i = 0;
        foreach (var a in r.Array(root, "annotations", "top level").EnumerateArray())
        {
            string rec = $"annotations[{i}]";
            long imageId = r.Int64(a, "image_id", rec);
            rec = $"annotations[{i}] (image_id {imageId})";
            if (!seenImages.Add(imageId)) throw r.Error(rec, "image_id", $"image id {imageId} has two annotations");
            var ann = new PanopticAnnotation { ImageId = imageId, FileName = r.String(a, "file_name", rec) };
            var segIds = new HashSet<long>();
            int j = 0;
            foreach (var s in r.Array(a, "segments_info", rec).EnumerateArray())
            {
                string srec = $"{rec} segments_info[{j}]";
                long id = r.Int64(s, "id", srec);
                srec = $"{rec} segments_info[{j}] (id {id})";
                if (id <= 0 || id > MaxSegmentId) throw r.Error(srec, "id", $"segment id {id} must be in 1..{MaxSegmentId} (0 is void)");
                if (!segIds.Add(id)) throw r.Error(srec, "id", $"duplicate segment id {id}");
                ann.Segments.Add(new PanopticSegment
                {
                    Id = id,
                    CategoryId = r.Int64(s, "category_id", srec),
                    Area = groundTruth || r.TryGet(s, "area", out _) ? r.Double(s, "area", srec) : null,
                    IsCrowd = groundTruth || r.TryGet(s, "iscrowd", out _) ? r.Flag(s, "iscrowd", srec) : 0,
                    Bbox = r.TryGet(s, "bbox", out var b) ? r.DoubleArray(b, "bbox", srec, 4) : null,
                });
                j++;
            }
            ds.Annotations.Add(ann);
            i++;
        }
        return ds;
    }

    /// <summary>Writes a panoptic JSON atomically.</summary>
    public static void WriteJson(string path, PanopticDataset ds)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream);
            w.WriteStartObject();
            CocoFiles.WriteImages(w, ds.Images);
            w.WriteStartArray("annotations");
            foreach (var a in ds.Annotations)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", a.ImageId);
                w.WriteString("file_name", a.FileName);
                w.WriteStartArray("segments_info");
                foreach (var s in a.Segments)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", s.Id);
                    w.WriteNumber("category_id", s.CategoryId);
                    if (s.Area is double area) w.WriteNumber("area", area);
                    w.WriteNumber("iscrowd", s.IsCrowd);
                    if (s.Bbox != null) CocoFiles.WriteNumbers(w, "bbox", s.Bbox);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            CocoFiles.WriteCategories(w, ds.Categories, withIsThing: true);
            w.WriteEndObject();
        });
    }

    /// <summary>Reads a panoptic PNG as row-major segment ids (R + 256·G + 256²·B; alpha ignored).</summary>
    public static int[] ReadPng(string path, out int width, out int height)
    {
        var img = ImageIO.ReadRgb(path);
        width = img.Width;
        height = img.Height;
        var ids = new int[width * height];
        var p = img.Pixels;
        for (int i = 0; i < ids.Length; i++) ids[i] = p[3 * i] | (p[3 * i + 1] << 8) | (p[3 * i + 2] << 16);
        return ids;
    }

    /// <summary>Writes row-major segment ids as a panoptic RGB PNG (R = id mod 256, G = id/256 mod 256, B = id/256²), atomically.</summary>
    public static void WritePng(string path, ReadOnlySpan<int> ids, int width, int height)
    {
        if (ids.Length != (long)width * height) throw new ArgumentException($"id buffer has {ids.Length} values, expected {width}x{height}");
        var img = new RgbImage(width, height);
        var p = img.Pixels;
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if (id < 0 || id > MaxSegmentId) throw new ArgumentException($"segment id {id} at pixel {i} is outside 0..{MaxSegmentId}");
            p[3 * i] = (byte)id; p[3 * i + 1] = (byte)(id >> 8); p[3 * i + 2] = (byte)(id >> 16);
        }
        ImageIO.WriteRgbPng(path, img);
    }

    /// <summary>Reads a single-channel class-id PNG (VOC style: pixel = class id, 255 = ignore); an RGB/palette PNG is rejected.</summary>
    public static byte[] ReadClassIdPng(string path, out int width, out int height)
    {
        var v = ImageIO.ReadGray(path, out width, out height, out bool wasGray);
        if (!wasGray) throw new DiffEggException($"{path}: not a single-channel (8-bit gray) PNG; class-id maps must store the class id in one channel");
        return v;
    }

    /// <summary>Writes a single-channel class-id PNG (255 = ignore), atomically.</summary>
    public static void WriteClassIdPng(string path, byte[] classIds, int width, int height) => ImageIO.WriteGrayPng(path, classIds, width, height);
}
