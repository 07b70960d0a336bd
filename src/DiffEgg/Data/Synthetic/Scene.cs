using DiffEgg.Data;

namespace DiffEgg.Data.Synthetic;

/// <summary>A category of the synthetic scenes (COCO style: things are shapes, stuff are background region kinds).</summary>
public sealed record SyntheticCategory(int Id, string Name, string Supercategory, bool IsThing);

/// <summary>The fixed category list of the synthetic scenes: 4 thing categories (by shape) and 3 stuff categories (by background texture).</summary>
public static class SyntheticCategories
{
    public static readonly IReadOnlyList<SyntheticCategory> All = new[]
    {
        new SyntheticCategory(1, "ellipse", "shape", true),
        new SyntheticCategory(2, "rectangle", "shape", true),
        new SyntheticCategory(3, "polygon", "shape", true),
        new SyntheticCategory(4, "blob", "shape", true),
        new SyntheticCategory(5, "smooth", "background", false),
        new SyntheticCategory(6, "grain", "background", false),
        new SyntheticCategory(7, "hatch", "background", false),
    };

    /// <summary>Category id of a thing shape (1..4).</summary>
    public static int ThingId(ShapeKind kind) => 1 + (int)kind;

    /// <summary>Category id of a stuff kind (5..7).</summary>
    public static int StuffId(StuffKind kind) => 5 + (int)kind;

    /// <summary>Value of ignored pixels in semantic PNGs (never produced: ground truth is pixel-exact).</summary>
    public const byte Ignore = 255;
}

/// <summary>Axis-aligned pixel bounding box, COCO convention [x, y, width, height] of the covered pixels.</summary>
public readonly record struct PixelBox(int X, int Y, int Width, int Height);

/// <summary>A visible thing instance of a scene.</summary>
public sealed record SceneInstance(int SegmentId, int CategoryId, ShapeKind Shape, ThingTexture Texture, Rgb BaseColor, int Area, PixelBox BBox);

/// <summary>The visible part of one stuff category (all its regions together form one segment).</summary>
public sealed record SceneStuff(int SegmentId, int CategoryId, StuffKind Kind, int Area, PixelBox BBox);

/// <summary>Two touching instances with base-colour CIE76 ΔE &lt; 10 and different textures.</summary>
public sealed record HardPair(int SegmentIdA, int SegmentIdB, double DeltaE, ThingTexture TextureA, ThingTexture TextureB, int ContactLength);

/// <summary>
/// One rendered scene with pixel-exact ground truth. <see cref="SegmentMap"/> holds, per pixel (row-major), the segment id:
/// things 1..n (bottom to top), stuff <see cref="StuffSegmentBase"/> + category id. <see cref="ClassMap"/> holds category ids.
/// </summary>
public sealed class Scene
{
    /// <summary>Stuff segment id = StuffSegmentBase + category id.</summary>
    public const int StuffSegmentBase = 100;

    public required int Width { get; init; }
    public required int Height { get; init; }
    public required ulong Seed { get; init; }
    public required RgbImage Image { get; init; }
    public required int[] SegmentMap { get; init; }
    public required byte[] ClassMap { get; init; }
    public required IReadOnlyList<SceneInstance> Instances { get; init; }
    public required IReadOnlyList<SceneStuff> Stuff { get; init; }
    public required IReadOnlyList<HardPair> HardPairs { get; init; }
    /// <summary>Whether the generator aimed for a hard pair in this scene (hard pairs may also arise by chance).</summary>
    public required bool HardPairDesigned { get; init; }

    /// <summary>Binary mask (row-major) of one segment.</summary>
    public bool[] MaskOf(int segmentId)
    {
        var m = new bool[SegmentMap.Length];
        for (int i = 0; i < m.Length; i++) m[i] = SegmentMap[i] == segmentId;
        return m;
    }
}
