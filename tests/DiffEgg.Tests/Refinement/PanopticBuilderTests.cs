using DiffEgg.Common;
using DiffEgg.Refinement;
using static DiffEgg.Tests.Refinement.Scenes;

namespace DiffEgg.Tests.Refinement;

public class PanopticBuilderTests
{
    internal const int W = 80, H = 64;
    internal static readonly Dictionary<int, bool> Cats = new() { [1] = true, [2] = true, [50] = false, [51] = false };

    /// <summary>Stuff 50 background, two touching class-1 squares split by an edge column, a class-2 object, stuff 51 crossed by an edge, an ignore band.</summary>
    internal static (byte[] Sem, float[] Edges) Scene()
    {
        var sem = Enumerable.Repeat((byte)50, W * H).ToArray();
        var e = new float[W * H];
        void Fill(int y0, int y1, int x0, int x1, byte v) { for (int y = y0; y <= y1; y++) for (int x = x0; x <= x1; x++) sem[y * W + x] = v; }
        Fill(8, 39, 4, 73, 1);          // two touching objects of class 1 ...
        VLine(e, W, 38, 8, 39);         // ... separated by an edge at x = 38
        Ring(e, W, 7, 40, 3, 74);
        Fill(44, 55, 4, 20, 2);         // one class-2 object
        Fill(44, 55, 40, 79, 51);       // stuff 51, cut by an edge line
        VLine(e, W, 60, 44, 55);
        Fill(60, 63, 0, 79, 255);       // ignore
        return (sem, e);
    }

    [Fact]
    public void TouchingSameClassObjectsBecomeTwoSegmentsAndStuffStaysWhole()
    {
        var (sem, e) = Scene();
        var r = PanopticBuilder.Build(sem, W, H, new EdgeMap(W, H, e), Cats);
        var c1 = r.Segments.Where(s => s.CategoryId == 1).ToList();
        Assert.Equal(2, c1.Count);
        Assert.Single(r.Segments, s => s.CategoryId == 2);
        Assert.Single(r.Segments, s => s.CategoryId == 50);
        Assert.Single(r.Segments, s => s.CategoryId == 51);
        Assert.Equal(5, r.Segments.Count);
        // each class-1 segment is one of the two halves (the edge column goes to one side)
        var left = Rect(W, H, 8, 39, 4, 37);
        var right = Rect(W, H, 8, 39, 39, 73);
        byte[] Seg(int id) => r.SegmentIds.Select(v => v == id ? (byte)1 : (byte)0).ToArray();
        Assert.True(c1.Max(s => IoU(Seg(s.Id), left)) > 0.95);
        Assert.True(c1.Max(s => IoU(Seg(s.Id), right)) > 0.95);
        // every non-ignore pixel has a segment of its own class; ignore is void (0)
        var byId = r.Segments.ToDictionary(s => s.Id);
        for (int i = 0; i < sem.Length; i++)
        {
            if (sem[i] == 255) Assert.Equal(0, r.SegmentIds[i]);
            else Assert.Equal(sem[i], byId[r.SegmentIds[i]].CategoryId);
        }
        // areas and boxes match the id map
        foreach (var s in r.Segments)
        {
            Assert.Equal(r.SegmentIds.Count(v => v == s.Id), s.Area);
        }
        var stuff51 = r.Segments.Single(s => s.CategoryId == 51);
        Assert.Equal(new[] { 40, 44, 40, 12 }, stuff51.Bbox);
        Assert.Equal(Enumerable.Range(1, 5), r.Segments.Select(s => s.Id));
    }

    [Fact]
    public void ThingWithoutInnerEdgesIsOneSegmentAndUnknownClassIsAnError()
    {
        var sem = new byte[32 * 32];
        for (int y = 8; y < 24; y++) for (int x = 8; x < 24; x++) sem[y * 32 + x] = 1;
        var cats = new Dictionary<int, bool> { [0] = false, [1] = true };
        var r = PanopticBuilder.Build(sem, 32, 32, new EdgeMap(32, 32, new float[32 * 32]), cats);
        Assert.Equal(2, r.Segments.Count);
        Assert.Equal(256, r.Segments.Single(s => s.CategoryId == 1).Area);
        sem[5] = 9;
        var ex = Assert.Throws<DiffEggException>(() => PanopticBuilder.Build(sem, 32, 32, new EdgeMap(32, 32, new float[32 * 32]), cats));
        Assert.Contains("9", ex.Message);
    }

    [Fact]
    public void IslandsJoinTheirClassSegmentOrAreDroppedBelowMinArea()
    {
        // class 1: a 10×10 object, a 2-pixel island far from it, a 6×6 island far from it (≥ min-area 16 → kept),
        // and a 2×2 island of class 1 separated from the object by an edge line but touching it (→ joins the object)
        var sem = new byte[40 * 40];
        var e = new float[40 * 40];
        sem[5 * 40 + 5] = 1; sem[5 * 40 + 6] = 1;
        for (int y = 20; y < 30; y++) for (int x = 20; x < 30; x++) sem[y * 40 + x] = 1;
        for (int y = 2; y < 8; y++) for (int x = 30; x < 36; x++) sem[y * 40 + x] = 1;
        for (int y = 22; y < 24; y++) for (int x = 30; x < 32; x++) sem[y * 40 + x] = 1;
        VLine(e, 40, 30, 18, 31);
        var cats = new Dictionary<int, bool> { [0] = false, [1] = true };
        var r = PanopticBuilder.Build(sem, 40, 40, new EdgeMap(40, 40, e), cats);
        var things = r.Segments.Where(s => s.CategoryId == 1).OrderBy(s => s.Area).ToList();
        Assert.Equal(new long[] { 36, 104 }, things.Select(s => s.Area));
        Assert.Equal(0, r.SegmentIds[5 * 40 + 5]); // the 2-pixel island is void
        Assert.Equal(r.SegmentIds[25 * 40 + 25], r.SegmentIds[22 * 40 + 31]); // the edge-cut piece joined its object
        // Alg 4 read literally (no competition) keeps every piece as a segment
        var literal = PanopticBuilder.Build(sem, 40, 40, new EdgeMap(40, 40, e), cats, new RefineOptions { Competition = false });
        Assert.Contains(literal.Segments, s => s.CategoryId == 1 && s.Area == 2);
    }
}
