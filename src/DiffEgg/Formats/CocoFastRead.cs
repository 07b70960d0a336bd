using System.Text.Json;

namespace DiffEgg.Formats;

/// <summary>
/// One-pass readers of COCO instances and results JSON straight from UTF-8 bytes (<see cref="Utf8JsonReader"/>; compressed RLE counts are
/// decoded from the bytes, no string is made of them). They accept only input that the strict <see cref="JsonDocument"/> readers of
/// <see cref="CocoFiles"/> accept, and give the same objects; at the first thing they do not handle (any defect included) they return null,
/// and the caller runs the strict reader, whose error names the file, the record and the field.
/// </summary>
internal static class CocoFastRead
{
    static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = JsonRead.MaxDepth };

    /// <summary>Reusable buffers of one read: decoded counts, unescaped string bytes, numbers of a polygon.</summary>
    sealed class Scratch
    {
        public uint[] Counts = new uint[256];
        public byte[] Text = new byte[1024];
        public readonly List<double> Numbers = new();
    }

    /// <summary>A segmentation as read, before its size is checked against its image.</summary>
    struct SegmentationValue
    {
        public bool Present;
        public List<double[]>? Polygons;
        public int Height, Width;
        public uint[]? Counts;
        public bool Compressed;
    }

    /// <summary>One annotation as read; its image is looked up once all of the file is read (images may come after annotations).</summary>
    struct AnnotationValue
    {
        public long Id, ImageId, CategoryId;
        public double Area;
        public int IsCrowd;
        public double[]? Bbox;
        public SegmentationValue Segmentation;
    }

    // ------------------------------------------------------------------ instances

    /// <summary>The instances file in <paramref name="json"/>, or null where the strict reader must run (a defect or a construct not handled here).</summary>
    public static CocoDataset? TryReadInstances(byte[] json)
    {
        try { return ReadInstances(Body(json)); }
        catch (JsonException) { return null; }
        catch (InvalidOperationException) { return null; } // a string with invalid escapes (the strict reader reports it)
    }

    static CocoDataset? ReadInstances(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json, ReaderOptions);
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return null;
        var scratch = new Scratch();
        var ds = new CocoDataset();
        List<AnnotationValue>? annotations = null;
        bool haveImages = false, haveCategories = false;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("images"u8))
            {
                if (haveImages || !r.Read() || !ReadImages(ref r, ds.Images)) return null;
                haveImages = true;
            }
            else if (r.ValueTextEquals("annotations"u8))
            {
                if (annotations != null || !r.Read()) return null;
                annotations = ReadAnnotations(ref r, scratch);
                if (annotations == null) return null;
            }
            else if (r.ValueTextEquals("categories"u8))
            {
                if (haveCategories || !r.Read() || !ReadCategories(ref r, ds.Categories)) return null;
                haveCategories = true;
            }
            else
            {
                r.Read();
                r.Skip();
            }
        }
        if (r.TokenType != JsonTokenType.EndObject || r.Read()) return null;
        if (!haveImages || annotations == null || !haveCategories) return null;

        var images = new Dictionary<long, CocoImage>(ds.Images.Count);
        foreach (var im in ds.Images) images[im.Id] = im;
        var annotationIds = new HashSet<long>(annotations.Count);
        ds.Annotations.Capacity = annotations.Count;
        foreach (var a in annotations)
        {
            if (!annotationIds.Add(a.Id) || !images.TryGetValue(a.ImageId, out var image)) return null;
            CocoSegmentation? segmentation = null;
            if (a.Segmentation.Present && (segmentation = ToSegmentation(a.Segmentation, image)) == null) return null;
            ds.Annotations.Add(new CocoAnnotation
            {
                Id = a.Id, ImageId = a.ImageId, CategoryId = a.CategoryId, Segmentation = segmentation, Bbox = a.Bbox, Area = a.Area, IsCrowd = a.IsCrowd,
            });
        }
        return ds;
    }

    static bool ReadImages(ref Utf8JsonReader r, List<CocoImage> into)
    {
        if (r.TokenType != JsonTokenType.StartArray) return false;
        var seen = new HashSet<long>();
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.StartObject) return false;
            long id = 0, width = 0, height = 0;
            bool haveId = false, haveWidth = false, haveHeight = false, haveName = false;
            string fileName = "";
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("id"u8)) { if (haveId || !r.Read() || !Integer(ref r, out id)) return false; haveId = true; }
                else if (r.ValueTextEquals("width"u8)) { if (haveWidth || !r.Read() || !Integer(ref r, out width)) return false; haveWidth = true; }
                else if (r.ValueTextEquals("height"u8)) { if (haveHeight || !r.Read() || !Integer(ref r, out height)) return false; haveHeight = true; }
                else if (r.ValueTextEquals("file_name"u8))
                {
                    if (haveName || !r.Read()) return false;
                    haveName = true;
                    if (r.TokenType == JsonTokenType.String) fileName = r.GetString()!;
                    else if (r.TokenType != JsonTokenType.Null) return false;
                }
                else { r.Read(); r.Skip(); }
            }
            if (!haveId || !haveWidth || !haveHeight || !seen.Add(id)) return false;
            if (width <= 0 || width > int.MaxValue || height <= 0 || height > int.MaxValue) return false;
            into.Add(new CocoImage(id, (int)width, (int)height, fileName));
        }
        return true;
    }

    static bool ReadCategories(ref Utf8JsonReader r, List<CocoCategory> into)
    {
        if (r.TokenType != JsonTokenType.StartArray) return false;
        var seen = new HashSet<long>();
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.StartObject) return false;
            long id = 0;
            int isThing = 1;
            string? name = null, supercategory = null;
            bool haveId = false, haveName = false, haveThing = false, haveSuper = false;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("id"u8)) { if (haveId || !r.Read() || !Integer(ref r, out id)) return false; haveId = true; }
                else if (r.ValueTextEquals("name"u8)) { if (haveName || !r.Read() || !OptionalString(ref r, out name)) return false; haveName = true; }
                else if (r.ValueTextEquals("supercategory"u8)) { if (haveSuper || !r.Read() || !OptionalString(ref r, out supercategory)) return false; haveSuper = true; }
                else if (r.ValueTextEquals("isthing"u8))
                {
                    if (haveThing || !r.Read()) return false;
                    haveThing = true;
                    if (r.TokenType != JsonTokenType.Null && !Flag(ref r, out isThing)) return false;
                }
                else { r.Read(); r.Skip(); }
            }
            if (!haveId || !seen.Add(id)) return false;
            into.Add(new CocoCategory(id, name ?? id.ToString(), supercategory, isThing));
        }
        return true;
    }

    static List<AnnotationValue>? ReadAnnotations(ref Utf8JsonReader r, Scratch scratch)
    {
        if (r.TokenType != JsonTokenType.StartArray) return null;
        var list = new List<AnnotationValue>();
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.StartObject) return null;
            var a = new AnnotationValue();
            bool haveId = false, haveImage = false, haveCategory = false, haveArea = false, haveCrowd = false, haveSegmentation = false, haveBbox = false;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("id"u8)) { if (haveId || !r.Read() || !Integer(ref r, out a.Id)) return null; haveId = true; }
                else if (r.ValueTextEquals("image_id"u8)) { if (haveImage || !r.Read() || !Integer(ref r, out a.ImageId)) return null; haveImage = true; }
                else if (r.ValueTextEquals("category_id"u8)) { if (haveCategory || !r.Read() || !Integer(ref r, out a.CategoryId)) return null; haveCategory = true; }
                else if (r.ValueTextEquals("area"u8)) { if (haveArea || !r.Read() || !FiniteNumber(ref r, out a.Area)) return null; haveArea = true; }
                else if (r.ValueTextEquals("iscrowd"u8)) { if (haveCrowd || !r.Read() || !Flag(ref r, out a.IsCrowd)) return null; haveCrowd = true; }
                else if (r.ValueTextEquals("segmentation"u8)) { if (haveSegmentation || !r.Read() || !Segmentation(ref r, scratch, out a.Segmentation)) return null; haveSegmentation = true; }
                else if (r.ValueTextEquals("bbox"u8)) { if (haveBbox || !r.Read() || !Bbox(ref r, out a.Bbox)) return null; haveBbox = true; }
                else { r.Read(); r.Skip(); }
            }
            if (!haveId || !haveImage || !haveCategory || !haveArea || !haveCrowd) return null;
            list.Add(a);
        }
        return list;
    }

    // ------------------------------------------------------------------ results

    /// <summary>The results file in <paramref name="json"/> (image ids checked against <paramref name="gt"/>), or null where the strict reader must run.</summary>
    public static List<CocoResult>? TryReadResults(byte[] json, CocoDataset gt)
    {
        try { return ReadResults(Body(json), gt); }
        catch (JsonException) { return null; }
        catch (InvalidOperationException) { return null; } // a string with invalid escapes (the strict reader reports it)
    }

    static List<CocoResult>? ReadResults(ReadOnlySpan<byte> json, CocoDataset gt)
    {
        var r = new Utf8JsonReader(json, ReaderOptions);
        if (!r.Read() || r.TokenType != JsonTokenType.StartArray) return null;
        var scratch = new Scratch();
        // a compact record of ours is about 170 bytes: a good first guess of the count
        var list = new List<CocoResult>(Math.Max(16, json.Length / 170));
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.StartObject) return null;
            long imageId = 0, categoryId = 0;
            double score = 0;
            double[]? bbox = null;
            SegmentationValue segmentation = default;
            bool haveImage = false, haveCategory = false, haveScore = false, haveSegmentation = false, haveBbox = false;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("image_id"u8)) { if (haveImage || !r.Read() || !Integer(ref r, out imageId)) return null; haveImage = true; }
                else if (r.ValueTextEquals("category_id"u8)) { if (haveCategory || !r.Read() || !Integer(ref r, out categoryId)) return null; haveCategory = true; }
                else if (r.ValueTextEquals("score"u8)) { if (haveScore || !r.Read() || !FiniteNumber(ref r, out score)) return null; haveScore = true; }
                else if (r.ValueTextEquals("segmentation"u8)) { if (haveSegmentation || !r.Read() || !Segmentation(ref r, scratch, out segmentation)) return null; haveSegmentation = true; }
                else if (r.ValueTextEquals("bbox"u8)) { if (haveBbox || !r.Read() || !Bbox(ref r, out bbox)) return null; haveBbox = true; }
                else { r.Read(); r.Skip(); }
            }
            if (!haveImage || !haveCategory || !haveScore) return null;
            var image = gt.FindImage(imageId);
            if (image == null) return null;
            CocoSegmentation? seg = null;
            if (segmentation.Present && (seg = ToSegmentation(segmentation, image)) == null) return null;
            if (seg == null && bbox == null) return null;
            list.Add(new CocoResult { ImageId = imageId, CategoryId = categoryId, Score = score, Segmentation = seg, Bbox = bbox });
        }
        if (r.TokenType != JsonTokenType.EndArray || r.Read()) return null;
        return list;
    }

    // ------------------------------------------------------------------ values

    /// <summary>The bytes after a UTF-8 byte order mark, if any (as JsonDocument.Parse of a stream skips it).</summary>
    static ReadOnlySpan<byte> Body(byte[] json) =>
        json.Length >= 3 && json[0] == 0xEF && json[1] == 0xBB && json[2] == 0xBF ? json.AsSpan(3) : json;

    /// <summary>An integer as <see cref="JsonRead.AsInt64"/> accepts it (integral floats such as 3.0 included).</summary>
    static bool Integer(ref Utf8JsonReader r, out long value)
    {
        value = 0;
        if (r.TokenType != JsonTokenType.Number) return false;
        if (r.TryGetInt64(out value)) return true;
        if (r.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e15) { value = (long)d; return true; }
        return false;
    }

    /// <summary>A finite number.</summary>
    static bool FiniteNumber(ref Utf8JsonReader r, out double value)
    {
        value = 0;
        return r.TokenType == JsonTokenType.Number && r.TryGetDouble(out value) && double.IsFinite(value);
    }

    /// <summary>A 0/1 flag as <see cref="JsonRead.Flag"/> accepts it (boolean or integer, clamped to int).</summary>
    static bool Flag(ref Utf8JsonReader r, out int value)
    {
        value = 0;
        if (r.TokenType == JsonTokenType.True) { value = 1; return true; }
        if (r.TokenType == JsonTokenType.False) return true;
        if (!Integer(ref r, out long l)) return false;
        value = (int)Math.Clamp(l, int.MinValue, int.MaxValue);
        return true;
    }

    /// <summary>A string, or null for JSON null (an optional string field).</summary>
    static bool OptionalString(ref Utf8JsonReader r, out string? value)
    {
        value = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.String) return false;
        value = r.GetString();
        return true;
    }

    /// <summary>A bbox: null (absent) or exactly 4 finite numbers.</summary>
    static bool Bbox(ref Utf8JsonReader r, out double[]? box)
    {
        box = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.StartArray) return false;
        var b = new double[4];
        int n = 0;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (n == 4 || !FiniteNumber(ref r, out b[n])) return false;
            n++;
        }
        if (n != 4) return false;
        box = b;
        return true;
    }

    /// <summary>An array of finite numbers.</summary>
    static double[]? Numbers(ref Utf8JsonReader r, List<double> scratch)
    {
        if (r.TokenType != JsonTokenType.StartArray) return null;
        scratch.Clear();
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (!FiniteNumber(ref r, out double v)) return null;
            scratch.Add(v);
        }
        return scratch.ToArray();
    }

    /// <summary>A segmentation value: null (absent), a polygon list, or an RLE object {size, counts} with counts a string or a list.</summary>
    static bool Segmentation(ref Utf8JsonReader r, Scratch scratch, out SegmentationValue value)
    {
        value = default;
        if (r.TokenType == JsonTokenType.Null) return true;
        value.Present = true;
        if (r.TokenType == JsonTokenType.StartArray)
        {
            var polygons = new List<double[]>();
            while (r.Read() && r.TokenType != JsonTokenType.EndArray)
            {
                var polygon = Numbers(ref r, scratch.Numbers);
                if (polygon == null) return false;
                polygons.Add(polygon);
            }
            if (polygons.Count == 0 || polygons[0].Length < 4) return false;
            if (polygons[0].Length == 4)
                for (int k = 1; k < polygons.Count; k++)
                    if (polygons[k].Length != 4) return false;
            value.Polygons = polygons;
            return true;
        }
        if (r.TokenType != JsonTokenType.StartObject) return false;
        bool haveSize = false, haveCounts = false;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("size"u8))
            {
                if (haveSize || !r.Read() || !Size(ref r, out value.Height, out value.Width)) return false;
                haveSize = true;
            }
            else if (r.ValueTextEquals("counts"u8))
            {
                if (haveCounts || !r.Read()) return false;
                haveCounts = true;
                if (r.TokenType == JsonTokenType.String)
                {
                    value.Compressed = true;
                    ReadOnlySpan<byte> text = r.ValueSpan;
                    if (r.ValueIsEscaped)
                    {
                        if (scratch.Text.Length < text.Length) scratch.Text = new byte[Math.Max(text.Length, scratch.Text.Length * 2)];
                        text = scratch.Text.AsSpan(0, r.CopyString(scratch.Text));
                    }
                    if (Rle.DecodeCompressed(text, ref scratch.Counts, out int count, out _, out _) != Rle.CompressedStatus.Ok) return false;
                    value.Counts = scratch.Counts.AsSpan(0, count).ToArray();
                }
                else if (r.TokenType == JsonTokenType.StartArray)
                {
                    int count = 0;
                    while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                    {
                        if (!Integer(ref r, out long v) || v < 0 || v > uint.MaxValue) return false;
                        if (count == scratch.Counts.Length) Array.Resize(ref scratch.Counts, scratch.Counts.Length * 2);
                        scratch.Counts[count++] = (uint)v;
                    }
                    value.Counts = scratch.Counts.AsSpan(0, count).ToArray();
                }
                else return false;
            }
            else { r.Read(); r.Skip(); }
        }
        return haveSize && haveCounts;
    }

    /// <summary>An RLE size [height, width] of non-negative integers (written as numbers, integral).</summary>
    static bool Size(ref Utf8JsonReader r, out int height, out int width)
    {
        height = width = 0;
        if (r.TokenType != JsonTokenType.StartArray) return false;
        Span<double> size = stackalloc double[2];
        int n = 0;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (n == 2 || !FiniteNumber(ref r, out size[n])) return false;
            n++;
        }
        if (n != 2) return false;
        for (int i = 0; i < 2; i++)
            if (size[i] != Math.Floor(size[i]) || size[i] < 0 || size[i] > int.MaxValue) return false;
        height = (int)size[0];
        width = (int)size[1];
        return true;
    }

    /// <summary>The segmentation for its image, or null where it does not fit the image (RLE size, counts sum).</summary>
    static CocoSegmentation? ToSegmentation(in SegmentationValue s, CocoImage image)
    {
        if (s.Polygons != null) return CocoSegmentation.FromPolygons(s.Polygons);
        if (s.Height != image.Height || s.Width != image.Width) return null;
        long sum = 0;
        foreach (uint c in s.Counts!) sum += c;
        if (sum != (long)s.Height * s.Width) return null;
        return CocoSegmentation.FromRle(new Rle(s.Height, s.Width, s.Counts), s.Compressed);
    }
}
