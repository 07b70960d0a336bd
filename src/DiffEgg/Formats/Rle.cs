using System.Text;
using DiffEgg.Common;

namespace DiffEgg.Formats;

/// <summary>
/// A binary mask in COCO run-length encoding: column-major (Fortran) order, counts alternate runs of 0s and 1s starting
/// with 0s (the first count may be 0). Same representation as pycocotools' maskApi.c RLE; all arithmetic works on runs,
/// never on an H×W buffer.
/// </summary>
public sealed class Rle : IEquatable<Rle>
{
    /// <summary>Mask height (rows).</summary>
    public int Height { get; }
    /// <summary>Mask width (columns).</summary>
    public int Width { get; }
    /// <summary>Run lengths, column-major, first run is of 0s. Do not modify.</summary>
    public uint[] Counts { get; }

    /// <summary>Wraps counts (not copied); throws <see cref="ArgumentException"/> unless they sum to height·width.</summary>
    public Rle(int height, int width, uint[] counts)
    {
        if (height < 0 || width < 0) throw new ArgumentException($"RLE size [{height}, {width}] must not be negative");
        ArgumentNullException.ThrowIfNull(counts);
        long sum = 0;
        foreach (uint c in counts) sum += c;
        if (sum != (long)height * width)
            throw new ArgumentException($"RLE counts sum to {sum}, expected height*width = {height}*{width} = {(long)height * width}");
        Height = height;
        Width = width;
        Counts = counts;
    }

    /// <summary>Pixel count height·width.</summary>
    public long PixelCount => (long)Height * Width;

    /// <summary>An all-zero mask of the given size.</summary>
    public static Rle Empty(int height, int width) => new(height, width, (long)height * width == 0 ? Array.Empty<uint>() : new[] { checked((uint)((long)height * width)) });

    /// <summary>An all-one mask of the given size.</summary>
    public static Rle Full(int height, int width) => new(height, width, (long)height * width == 0 ? Array.Empty<uint>() : new[] { 0u, checked((uint)((long)height * width)) });

    // ---------------------------------------------------------------- encode / decode

    /// <summary>Encodes a row-major mask (nonzero = foreground) as COCO RLE (maskApi rleEncode, column-major scan).</summary>
    public static Rle Encode(ReadOnlySpan<byte> rowMajor, int height, int width)
    {
        CheckSize(rowMajor.Length, height, width);
        var counts = new List<uint>();
        bool prev = false;
        uint run = 0;
        for (int x = 0; x < width; x++)
            for (int y = 0, i = x; y < height; y++, i += width)
            {
                bool v = rowMajor[i] != 0;
                if (v != prev) { counts.Add(run); run = 0; prev = v; }
                run++;
            }
        counts.Add(run);
        return new Rle(height, width, counts.ToArray());
    }

    /// <summary>Encodes a row-major boolean mask as COCO RLE (maskApi rleEncode); a bool is one byte, 0 or 1, so this reuses the byte encoder.</summary>
    public static Rle Encode(ReadOnlySpan<bool> rowMajor, int height, int width) =>
        Encode(System.Runtime.InteropServices.MemoryMarshal.Cast<bool, byte>(rowMajor), height, width);

    /// <summary>Encodes the pixels of a row-major label map equal to <paramref name="label"/> (one pass, no intermediate mask).</summary>
    public static Rle EncodeLabel(ReadOnlySpan<int> rowMajorLabels, int height, int width, int label)
    {
        CheckSize(rowMajorLabels.Length, height, width);
        var counts = new List<uint>();
        bool prev = false;
        uint run = 0;
        for (int x = 0; x < width; x++)
            for (int y = 0, i = x; y < height; y++, i += width)
            {
                bool v = rowMajorLabels[i] == label;
                if (v != prev) { counts.Add(run); run = 0; prev = v; }
                run++;
            }
        counts.Add(run);
        return new Rle(height, width, counts.ToArray());
    }

    /// <summary>Encodes every label of a row-major label map in one column-major pass (labels equal to <paramref name="background"/> are skipped); keys ascend.</summary>
    public static SortedDictionary<int, Rle> EncodeLabels(ReadOnlySpan<int> rowMajorLabels, int height, int width, int background = 0)
    {
        CheckSize(rowMajorLabels.Length, height, width);
        var runs = new Dictionary<int, (List<uint> Counts, long End)>();
        long p = 0;
        for (int x = 0; x < width; x++)
            for (int y = 0, i = x; y < height; y++, i += width, p++)
            {
                int l = rowMajorLabels[i];
                if (l == background) continue;
                if (!runs.TryGetValue(l, out var r)) r = (new List<uint>(), 0);
                if (r.End == p && r.Counts.Count > 0) r.Counts[^1]++;
                else { r.Counts.Add((uint)(p - r.End)); r.Counts.Add(1); }
                runs[l] = (r.Counts, p + 1);
            }
        var result = new SortedDictionary<int, Rle>();
        long total = (long)height * width;
        foreach (var (l, (counts, end)) in runs)
        {
            if (end < total) counts.Add((uint)(total - end));
            result[l] = new Rle(height, width, counts.ToArray());
        }
        return result;
    }

    static void CheckSize(int length, int height, int width)
    {
        if (height <= 0 || width <= 0) throw new ArgumentException($"mask size {height}x{width} must be positive");
        if (length != (long)height * width) throw new ArgumentException($"mask has {length} pixels, expected height*width = {height}*{width}");
    }

    /// <summary>Decodes to a row-major byte mask (1 = foreground) (maskApi rleDecode, transposed to row-major).</summary>
    public byte[] Decode()
    {
        var m = new byte[checked(Height * Width)];
        DecodeInto(m, 1);
        return m;
    }

    /// <summary>Writes <paramref name="value"/> into a row-major buffer at every foreground pixel (others untouched).</summary>
    public void DecodeInto(Span<byte> rowMajor, byte value)
    {
        if (rowMajor.Length != PixelCount) throw new ArgumentException($"buffer has {rowMajor.Length} pixels, expected {Height}x{Width}");
        long p = 0;
        int h = Height, w = Width;
        for (int j = 0; j < Counts.Length; j++)
        {
            long c = Counts[j];
            if ((j & 1) == 1)
                for (long q = p; q < p + c; q++)
                {
                    int x = (int)(q / h), y = (int)(q - (long)x * h);
                    rowMajor[y * w + x] = value;
                }
            p += c;
        }
    }

    // ---------------------------------------------------------------- measures

    long _area = -1;

    /// <summary>Foreground pixel count (maskApi rleArea); computed once.</summary>
    public long Area
    {
        get
        {
            if (_area >= 0) return _area;
            long a = 0;
            for (int j = 1; j < Counts.Length; j += 2) a += Counts[j];
            return _area = a;
        }
    }

    /// <summary>Bounding box [x, y, w, h] exactly as maskApi rleToBbox (a run spanning columns makes the box full height).</summary>
    public double[] ToBbox()
    {
        var bb = new double[4];
        uint h = (uint)Height, w = (uint)Width;
        int m = Counts.Length / 2 * 2;
        if (m == 0 || h == 0) return bb;
        uint xs = w, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
        for (int j = 0; j < m; j++)
        {
            cc += Counts[j];
            uint t = cc - (uint)(j % 2);
            uint y = t % h, x = (t - y) / h;
            if (j % 2 == 0) xp = x;
            else if (xp < x) { ys = 0; ye = h - 1; }
            xs = Math.Min(xs, x); xe = Math.Max(xe, x); ys = Math.Min(ys, y); ye = Math.Max(ye, y);
        }
        bb[0] = xs; bb[2] = xe - xs + 1;
        bb[1] = ys; bb[3] = ye - ys + 1;
        return bb;
    }

    // ---------------------------------------------------------------- set operations

    /// <summary>Union of two masks of the same size, computed on runs (maskApi rleMerge, intersect = 0).</summary>
    public static Rle Union(Rle a, Rle b) => Merge2(a, b, intersect: false);

    /// <summary>Intersection of two masks of the same size, computed on runs (maskApi rleMerge, intersect = 1).</summary>
    public static Rle Intersect(Rle a, Rle b) => Merge2(a, b, intersect: true);

    /// <summary>Union (or intersection) of many masks of one size (maskApi rleMerge); one mask is returned as a copy.</summary>
    public static Rle Merge(IReadOnlyList<Rle> masks, bool intersect = false)
    {
        if (masks.Count == 0) throw new ArgumentException("merge needs at least one mask");
        if (masks.Count == 1) return new Rle(masks[0].Height, masks[0].Width, (uint[])masks[0].Counts.Clone());
        Rle acc = masks[0];
        for (int i = 1; i < masks.Count; i++) acc = Merge2(acc, masks[i], intersect);
        return acc;
    }

    /// <summary>Complement of the mask (maskApi rleInvert).</summary>
    public Rle Invert()
    {
        if (Counts.Length == 0) return new Rle(Height, Width, Array.Empty<uint>());
        if (Counts[0] == 0) return new Rle(Height, Width, Counts[1..]);
        var c = new uint[Counts.Length + 1];
        Array.Copy(Counts, 0, c, 1, Counts.Length);
        return new Rle(Height, Width, c);
    }

    static void CheckSame(Rle a, Rle b)
    {
        if (a.Height != b.Height || a.Width != b.Width)
            throw new ArgumentException($"RLE sizes differ: {a.Height}x{a.Width} vs {b.Height}x{b.Width}");
    }

    static Rle Merge2(Rle a, Rle b, bool intersect)
    {
        CheckSame(a, b);
        var outc = new List<uint>(Math.Max(a.Counts.Length, b.Counts.Length) + 2);
        var ra = new RunCursor(a.Counts);
        var rb = new RunCursor(b.Counts);
        bool cur = false;
        uint run = 0;
        while (!ra.Done && !rb.Done)
        {
            uint c = Math.Min(ra.Left, rb.Left);
            bool v = intersect ? ra.Value && rb.Value : ra.Value || rb.Value;
            if (c > 0)
            {
                if (v != cur) { outc.Add(run); run = 0; cur = v; }
                run += c;
            }
            ra.Take(c);
            rb.Take(c);
        }
        outc.Add(run);
        return new Rle(a.Height, a.Width, outc.ToArray());
    }

    /// <summary>Walks the runs of a counts array, skipping zero-length runs.</summary>
    struct RunCursor
    {
        readonly uint[] _c;
        int _j;
        public uint Left;
        public bool Value;
        public RunCursor(uint[] counts)
        {
            _c = counts; _j = 0; Value = false; Left = counts.Length > 0 ? counts[0] : 0;
            Skip();
        }
        public readonly bool Done => _j >= _c.Length;
        void Skip()
        {
            while (Left == 0 && _j < _c.Length)
            {
                _j++;
                if (_j < _c.Length) { Left = _c[_j]; Value = (_j & 1) == 1; }
            }
        }
        public void Take(uint c)
        {
            Left -= c;
            if (Left == 0) Skip();
        }
    }

    /// <summary>Intersection pixel count of two same-size masks, on runs.</summary>
    public static long IntersectionArea(Rle a, Rle b)
    {
        CheckSame(a, b);
        uint[] ca = a.Counts, cb = b.Counts;
        // walk foreground intervals [start, end) of both
        long inter = 0;
        int ia = 0, ib = 0;
        long sa = 0, sb = 0; // start of run ia / ib
        // advance to first foreground runs
        if (ca.Length < 2 || cb.Length < 2) return 0;
        sa = ca[0]; ia = 1;
        sb = cb[0]; ib = 1;
        while (ia < ca.Length && ib < cb.Length)
        {
            long ea = sa + ca[ia], eb = sb + cb[ib];
            long lo = Math.Max(sa, sb), hi = Math.Min(ea, eb);
            if (hi > lo) inter += hi - lo;
            if (ea <= eb)
            {
                sa = ea + (ia + 1 < ca.Length ? ca[ia + 1] : 0);
                ia += 2;
            }
            else
            {
                sb = eb + (ib + 1 < cb.Length ? cb[ib + 1] : 0);
                ib += 2;
            }
        }
        return inter;
    }

    /// <summary>The mask of <paramref name="masks"/> with the highest IoU with <paramref name="target"/> (no crowd): (IoU, index); (0, −1) when none overlaps.</summary>
    public static (double IoU, int Index) BestMatch(IReadOnlyList<Rle> masks, Rle target)
    {
        double best = 0;
        int at = -1;
        for (int j = 0; j < masks.Count; j++)
        {
            double iou = Iou(masks[j], target, false);
            if (iou > best) { best = iou; at = j; }
        }
        return (best, at);
    }

    /// <summary>IoU of a detection with a ground-truth mask as maskApi rleIou: for a crowd gt the union is the detection's area; 0 when they do not intersect.</summary>
    public static double Iou(Rle dt, Rle gt, bool gtIsCrowd)
    {
        long i = IntersectionArea(dt, gt);
        if (i == 0) return 0.0;
        long u = gtIsCrowd ? dt.Area : dt.Area + gt.Area - i;
        return (double)i / (double)u;
    }

    /// <summary>Box IoU as maskApi bbIou on [x, y, w, h] boxes: for a crowd gt the union is the detection box's area.</summary>
    public static double BboxIou(ReadOnlySpan<double> dt, ReadOnlySpan<double> gt, bool gtIsCrowd)
    {
        double ga = gt[2] * gt[3], da = dt[2] * dt[3];
        double w = Math.Min(dt[2] + dt[0], gt[2] + gt[0]) - Math.Max(dt[0], gt[0]);
        if (w <= 0) return 0;
        double h = Math.Min(dt[3] + dt[1], gt[3] + gt[1]) - Math.Max(dt[1], gt[1]);
        if (h <= 0) return 0;
        double i = w * h;
        double u = gtIsCrowd ? da : da + ga - i;
        return i / u;
    }

    // ---------------------------------------------------------------- compressed string (maskApi rleToString / rleFrString)

    /// <summary>COCO compressed counts string (maskApi rleToString: 5 bits per char, chars 48..111, counts from the 4th on stored as the difference to the count two before).</summary>
    public string ToCompressedString()
    {
        var sb = new StringBuilder(Counts.Length * 2);
        for (int i = 0; i < Counts.Length; i++)
        {
            long x = Counts[i];
            if (i > 2) x -= Counts[i - 2];
            bool more = true;
            while (more)
            {
                int c = (int)(x & 0x1f);
                x >>= 5;
                more = (c & 0x10) != 0 ? x != -1 : x != 0;
                if (more) c |= 0x20;
                sb.Append((char)(c + 48));
            }
        }
        return sb.ToString();
    }

    /// <summary>Parses a COCO compressed counts string (maskApi rleFrString); throws <see cref="ArgumentException"/> on a bad character or counts that do not sum to height·width.</summary>
    public static Rle FromCompressedString(string s, int height, int width)
    {
        uint[] scratch = new uint[Math.Max(4, s.Length)];
        var status = DecodeCompressed(s.AsSpan(), ref scratch, out int count, out int at, out long badCount);
        if (status != CompressedStatus.Ok) throw new ArgumentException(CompressedErrorMessage(status, s.Length > at ? s[at] : '\0', at, badCount, count));
        return new Rle(height, width, scratch.AsSpan(0, count).ToArray());
    }

    /// <summary>Outcome of <see cref="DecodeCompressed{TChar}"/>.</summary>
    internal enum CompressedStatus { Ok, EndsInsideCount, InvalidCharacter, CountTooLong, InvalidCount }

    /// <summary>The <see cref="ArgumentException"/> message of a failed <see cref="DecodeCompressed{TChar}"/>.</summary>
    internal static string CompressedErrorMessage(CompressedStatus status, char badChar, int at, long badCount, int run) => status switch
    {
        CompressedStatus.EndsInsideCount => "compressed RLE string ends inside a count",
        CompressedStatus.InvalidCharacter => $"compressed RLE string has an invalid character '{badChar}' at position {at}",
        CompressedStatus.CountTooLong => "compressed RLE string has a count that is too long",
        _ => $"compressed RLE string decodes to an invalid count {badCount} (run {run})",
    };

    /// <summary>
    /// Decodes compressed counts (maskApi rleFrString) from UTF-16 chars or UTF-8 bytes into <paramref name="counts"/> (grown as needed);
    /// <paramref name="count"/> is the number of runs. On failure <paramref name="at"/> is the offending position and <paramref name="badCount"/> the bad value.
    /// </summary>
    internal static CompressedStatus DecodeCompressed<TChar>(ReadOnlySpan<TChar> s, ref uint[] counts, out int count, out int at, out long badCount)
        where TChar : unmanaged, System.Numerics.IBinaryInteger<TChar>
    {
        int m = 0, p = 0;
        at = 0; badCount = 0;
        uint[] cnts = counts;
        while (p < s.Length)
        {
            long x = 0;
            int k = 0;
            bool more = true;
            while (more)
            {
                if (p >= s.Length) { count = m; at = p; counts = cnts; return CompressedStatus.EndsInsideCount; }
                int c = int.CreateTruncating(s[p]) - 48;
                if (c < 0 || c > 63) { count = m; at = p; counts = cnts; return CompressedStatus.InvalidCharacter; }
                if (k > 12) { count = m; at = p; counts = cnts; return CompressedStatus.CountTooLong; }
                x |= (long)(c & 0x1f) << (5 * k);
                more = (c & 0x20) != 0;
                p++; k++;
                if (!more && (c & 0x10) != 0) x |= -1L << (5 * k);
            }
            if (m > 2) x += cnts[m - 2];
            if (x < 0 || x > uint.MaxValue) { count = m; at = p; badCount = x; counts = cnts; return CompressedStatus.InvalidCount; }
            if (m == cnts.Length) Array.Resize(ref cnts, Math.Max(8, cnts.Length * 2));
            cnts[m++] = (uint)x;
        }
        count = m;
        counts = cnts;
        return CompressedStatus.Ok;
    }

    // ---------------------------------------------------------------- polygons and boxes (maskApi rleFrPoly / rleFrBbox)

    /// <summary>Rasterises one polygon [x0,y0,x1,y1,...] exactly as maskApi rleFrPoly (×5 upsampled boundary, y-boundary points, same rounding).</summary>
    public static Rle FromPolygon(ReadOnlySpan<double> xy, int height, int width)
    {
        if (height <= 0 || width <= 0) throw new ArgumentException($"mask size {height}x{width} must be positive");
        int k = xy.Length / 2;
        const double scale = 5;
        var x = new int[k + 1];
        var y = new int[k + 1];
        for (int j = 0; j < k; j++) x[j] = (int)(scale * xy[j * 2] + .5);
        for (int j = 0; j < k; j++) y[j] = (int)(scale * xy[j * 2 + 1] + .5);
        if (k > 0) { x[k] = x[0]; y[k] = y[0]; }
        long total = 0;
        for (int j = 0; j < k; j++) total += Math.Max(Math.Abs((long)x[j] - x[j + 1]), Math.Abs((long)y[j] - y[j + 1])) + 1;
        var u = new int[total];
        var v = new int[total];
        int m = 0;
        for (int j = 0; j < k; j++)
        {
            int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
            int dx = Math.Abs(xe - xs), dy = Math.Abs(ys - ye);
            bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if (flip) { (xs, xe) = (xe, xs); (ys, ye) = (ye, ys); }
            if (dx == 0 && dy == 0)
            {
                // maskApi divides 0/0 here; the point's y is never used (its x equals both neighbours').
                u[m] = xs; v[m] = ys; m++;
                continue;
            }
            double s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
            if (dx >= dy)
                for (int d = 0; d <= dx; d++)
                {
                    int t = flip ? dx - d : d;
                    u[m] = t + xs; v[m] = (int)(ys + s * t + .5); m++;
                }
            else
                for (int d = 0; d <= dy; d++)
                {
                    int t = flip ? dy - d : d;
                    v[m] = t + ys; u[m] = (int)(xs + s * t + .5); m++;
                }
        }
        // y-boundary points, downsampled
        var a = new List<uint>(m + 1);
        for (int j = 1; j < m; j++)
        {
            if (u[j] == u[j - 1]) continue;
            double xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
            xd = (xd + .5) / scale - .5;
            if (Math.Floor(xd) != xd || xd < 0 || xd > width - 1) continue;
            double yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
            yd = (yd + .5) / scale - .5;
            if (yd < 0) yd = 0; else if (yd > height) yd = height;
            yd = Math.Ceiling(yd);
            a.Add(unchecked((uint)((int)xd * height + (int)yd)));
        }
        a.Add(checked((uint)((long)height * width)));
        a.Sort();
        uint prev = 0;
        for (int j = 0; j < a.Count; j++) { uint t = a[j]; a[j] = t - prev; prev = t; }
        var b = new List<uint>(a.Count);
        int jj = 0;
        b.Add(a[jj++]);
        while (jj < a.Count)
        {
            if (a[jj] > 0) b.Add(a[jj++]);
            else
            {
                jj++;
                if (jj < a.Count) b[^1] += a[jj++];
            }
        }
        return new Rle(height, width, b.ToArray());
    }

    /// <summary>Rasterises a box [x, y, w, h] as maskApi rleFrBbox (the box's four corners through <see cref="FromPolygon"/>).</summary>
    public static Rle FromBbox(ReadOnlySpan<double> bbox, int height, int width)
    {
        if (bbox.Length != 4) throw new ArgumentException($"a bbox has 4 numbers [x, y, w, h], got {bbox.Length}");
        double xs = bbox[0], xe = xs + bbox[2], ys = bbox[1], ye = ys + bbox[3];
        return FromPolygon(new[] { xs, ys, xs, ye, xe, ye, xe, ys }, height, width);
    }

    /// <summary>
    /// A COCO polygon list as pycocotools annToRLE does it: frPyObjects then merge. As pycocotools, if the FIRST polygon
    /// has exactly 4 numbers every entry is read as a box [x, y, w, h]; otherwise each is a polygon.
    /// </summary>
    public static Rle FromPolygons(IReadOnlyList<double[]> polygons, int height, int width)
    {
        if (polygons.Count == 0) throw new ArgumentException("empty polygon list");
        var rles = new Rle[polygons.Count];
        bool boxes = polygons[0].Length == 4;
        if (!boxes && polygons[0].Length < 4) throw new ArgumentException($"polygon 0 has {polygons[0].Length} numbers; a polygon needs at least 3 points");
        for (int i = 0; i < polygons.Count; i++)
        {
            if (boxes && polygons[i].Length != 4) throw new ArgumentException($"polygon {i} has {polygons[i].Length} numbers, but the first has 4 so all are read as boxes (as pycocotools)");
            rles[i] = boxes ? FromBbox(polygons[i], height, width) : FromPolygon(polygons[i], height, width);
        }
        return Merge(rles);
    }

    // ---------------------------------------------------------------- equality

    public bool Equals(Rle? other) => other is not null && other.Height == Height && other.Width == Width && other.Counts.AsSpan().SequenceEqual(Counts);
    public override bool Equals(object? obj) => Equals(obj as Rle);
    public override int GetHashCode() => HashCode.Combine(Height, Width, Counts.Length, Counts.Length > 0 ? Counts[0] : 0);
    public override string ToString() => $"Rle {Height}x{Width}, {Counts.Length} runs, area {Area}";
}
