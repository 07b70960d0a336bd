using DiffEgg.Formats;

namespace DiffEgg.Tests.Coco;

public class RleTests
{
    static byte[] RandomMask(Random rng, int h, int w, double p)
    {
        var m = new byte[h * w];
        // blobby: random rectangles
        for (int k = 0; k < 3; k++)
        {
            int x0 = rng.Next(w), y0 = rng.Next(h), x1 = Math.Min(w, x0 + rng.Next(1, w)), y1 = Math.Min(h, y0 + rng.Next(1, h));
            for (int y = y0; y < y1; y++) for (int x = x0; x < x1; x++) m[y * w + x] = 1;
        }
        for (int i = 0; i < m.Length; i++) if (rng.NextDouble() < p) m[i] ^= 1;
        return m;
    }

    [Fact]
    public void Encode_IsColumnMajor_HandExample()
    {
        // rows: [0 1] [1 1] [0 0]  -> column 0 = 0,1,0 ; column 1 = 1,1,0
        var rle = Rle.Encode(new byte[] { 0, 1, 1, 1, 0, 0 }, 3, 2);
        Assert.Equal(new uint[] { 1, 1, 1, 2, 1 }, rle.Counts);
        Assert.Equal(3, rle.Area);
        Assert.Equal(new double[] { 0, 0, 2, 2 }, rle.ToBbox());
        Assert.Equal(new byte[] { 0, 1, 1, 1, 0, 0 }, rle.Decode());
        // a mask starting with a foreground pixel starts with a zero count
        Assert.Equal(new uint[] { 0, 1, 3 }, Rle.Encode(new bool[] { true, false, false, false }, 2, 2).Counts);
    }

    [Fact]
    public void EncodeDecode_RoundTrips_RandomMasks()
    {
        var rng = new Random(7);
        for (int t = 0; t < 20; t++)
        {
            int h = rng.Next(1, 40), w = rng.Next(1, 40);
            var m = RandomMask(rng, h, w, 0.05);
            var rle = Rle.Encode(m, h, w);
            Assert.Equal(m, rle.Decode());
            Assert.Equal(m.Count(b => b != 0), rle.Area);
            Assert.Equal(rle, Rle.FromCompressedString(rle.ToCompressedString(), h, w));
        }
    }

    [Theory]
    [InlineData(new uint[] { 0, 5, 10 }, "05:")]
    [InlineData(new uint[] { 3, 4, 5, 6 }, "3452")]       // 4th count stored as 6-4 = 2
    [InlineData(new uint[] { 3, 10, 5, 2 }, "3:5H")]      // 2-10 = -8 -> 5-bit group 24 with sign bit -> 'H'
    [InlineData(new uint[] { 100 }, "T3")]                // 100 = 4 + 3*32 -> (4|0x20)+48 = 'T', 3+48 = '3'
    public void CompressedString_MatchesHandEncoding(uint[] counts, string expected)
    {
        long n = counts.Sum(c => (long)c);
        var rle = new Rle(1, (int)n, counts);
        Assert.Equal(expected, rle.ToCompressedString());
        Assert.Equal(counts, Rle.FromCompressedString(expected, 1, (int)n).Counts);
    }

    [Fact]
    public void CompressedString_RejectsBadInput()
    {
        Assert.Throws<ArgumentException>(() => Rle.FromCompressedString("05:", 3, 4)); // sums to 15, not 12
        Assert.Throws<ArgumentException>(() => Rle.FromCompressedString("0~", 1, 1));  // '~' is outside 48..111
    }

    [Fact]
    public void MergeAndIntersection_AgreeWithPixels()
    {
        var rng = new Random(11);
        for (int t = 0; t < 15; t++)
        {
            int h = rng.Next(1, 30), w = rng.Next(1, 30);
            var a = RandomMask(rng, h, w, 0.1);
            var b = RandomMask(rng, h, w, 0.1);
            var c = RandomMask(rng, h, w, 0.1);
            var ra = Rle.Encode(a, h, w); var rb = Rle.Encode(b, h, w); var rc = Rle.Encode(c, h, w);
            var uni = new byte[h * w]; var inter = new byte[h * w];
            for (int i = 0; i < uni.Length; i++) { uni[i] = (byte)(a[i] | b[i] | c[i]); inter[i] = (byte)(a[i] & b[i] & c[i]); }
            Assert.Equal(Rle.Encode(uni, h, w), Rle.Merge(new[] { ra, rb, rc }));
            Assert.Equal(Rle.Encode(inter, h, w), Rle.Merge(new[] { ra, rb, rc }, intersect: true));
            long ab = 0; for (int i = 0; i < a.Length; i++) ab += a[i] & b[i];
            Assert.Equal(ab, Rle.IntersectionArea(ra, rb));
            var inv = ra.Invert().Decode();
            for (int i = 0; i < a.Length; i++) Assert.Equal(1 - a[i], inv[i]);
        }
    }

    [Fact]
    public void Operations_TolerateZeroLengthRuns()
    {
        // non-canonical counts (zero runs inside) as an external tool might write them
        var a = new Rle(1, 6, new uint[] { 1, 2, 0, 1, 2 });   // ones at 1,2,3
        var b = new Rle(1, 6, new uint[] { 2, 4 });            // ones at 2..5
        Assert.Equal(2, Rle.IntersectionArea(a, b));
        Assert.Equal(new uint[] { 1, 5 }, Rle.Union(a, b).Counts);
        Assert.Equal(new uint[] { 2, 2, 2 }, Rle.Intersect(a, b).Counts);
    }

    [Fact]
    public void Iou_UsesDetectionAreaForCrowd()
    {
        // 1x10 strip: dt ones at 0..3 (area 4), gt ones at 2..9 (area 8); intersection 2
        var dt = new Rle(1, 10, new uint[] { 0, 4, 6 });
        var gt = new Rle(1, 10, new uint[] { 2, 8 });
        Assert.Equal(2.0 / 10.0, Rle.Iou(dt, gt, gtIsCrowd: false));
        Assert.Equal(2.0 / 4.0, Rle.Iou(dt, gt, gtIsCrowd: true));
        Assert.Equal(0.0, Rle.Iou(dt, new Rle(1, 10, new uint[] { 5, 5 }), false));
        Assert.Equal(4.0 / (100 + 4 - 4), Rle.BboxIou(new double[] { 0, 0, 2, 2 }, new double[] { 0, 0, 10, 10 }, false));
        Assert.Equal(1.0, Rle.BboxIou(new double[] { 0, 0, 2, 2 }, new double[] { 0, 0, 10, 10 }, true));
    }

    [Fact]
    public void FromBbox_FollowsFrPolyRounding()
    {
        // traced through maskApi rleFrPoly by hand: box [0,0,2,2] covers pixels x,y in {0,1}
        Assert.Equal(new uint[] { 0, 2, 2, 2, 10 }, Rle.FromBbox(new double[] { 0, 0, 2, 2 }, 4, 4).Counts);
        // width 1.5: the upsampled right edge is at u = 8, whose y-boundary points give columns 0 and 1 (row 0 only)
        Assert.Equal(new uint[] { 0, 1, 1, 1, 3 }, Rle.FromBbox(new double[] { 0, 0, 1.5, 1 }, 2, 3).Counts);
        // an integer box [x,y,w,h] covers exactly w*h pixels with the same box
        var r = Rle.FromBbox(new double[] { 3, 5, 7, 4 }, 20, 20);
        Assert.Equal(28, r.Area);
        Assert.Equal(new double[] { 3, 5, 7, 4 }, r.ToBbox());
    }

    [Fact]
    public void FromPolygon_TriangleIsInsideItsBox_AndFirstEntryOf4IsABox()
    {
        var tri = Rle.FromPolygon(new double[] { 0, 0, 10, 0, 0, 10 }, 12, 12);
        Assert.InRange(tri.Area, 45, 66); // half of the 10x10 box, give or take the diagonal
        var bb = tri.ToBbox();
        Assert.True(bb[0] >= 0 && bb[1] >= 0 && bb[0] + bb[2] <= 11 && bb[1] + bb[3] <= 11);
        // pycocotools frPyObjects: a first entry of 4 numbers means "boxes"
        Assert.Equal(Rle.FromBbox(new double[] { 1, 1, 3, 3 }, 8, 8), Rle.FromPolygons(new[] { new double[] { 1, 1, 3, 3 } }, 8, 8));
        // repeated vertices (zero-length edges) are harmless
        Assert.Equal(Rle.FromBbox(new double[] { 0, 0, 2, 2 }, 4, 4), Rle.FromPolygon(new double[] { 0, 0, 0, 0, 0, 2, 2, 2, 2, 0 }, 4, 4));
    }
}
