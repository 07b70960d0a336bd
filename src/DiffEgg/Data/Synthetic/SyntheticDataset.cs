using DiffEgg.Common;
using DiffEgg.Data;

namespace DiffEgg.Data.Synthetic;

/// <summary>File layout and writers of a synthetic scene folder (images/, semantic/, panoptic/ PNGs and the JSON ground truth).</summary>
public static class SyntheticDataset
{
    /// <summary>File stem of a scene: "train_000012" / "test_000012".</summary>
    public static string FileStem(SyntheticSplit split, int index) => $"{SplitName(split)}_{index:D6}";

    public static string SplitName(SyntheticSplit split) => split == SyntheticSplit.Test ? "test" : "train";

    /// <summary>COCO image id of a scene: global scene number + 1 (train 1.., test 1,000,001..), unique across splits.</summary>
    public static int ImageId(SyntheticSplit split, int index) => (int)SceneGenerator.SceneNumber(split, index) + 1;

    /// <summary>Panoptic PNG colour of a segment id: id = R + 256·G + 256²·B (COCO panoptic).</summary>
    public static RgbImage PanopticPng(int[] segmentMap, int width, int height)
    {
        var img = new RgbImage(width, height);
        for (int i = 0; i < segmentMap.Length; i++)
        {
            int id = segmentMap[i];
            img.Pixels[3 * i] = (byte)(id & 255);
            img.Pixels[3 * i + 1] = (byte)((id >> 8) & 255);
            img.Pixels[3 * i + 2] = (byte)((id >> 16) & 255);
        }
        return img;
    }

    /// <summary>Writes the per-scene PNGs: images/STEM.png (RGB), semantic/STEM.png (category ids), panoptic/STEM.png (segment ids).</summary>
    public static void WriteScenePngs(string dir, string stem, Scene scene)
    {
        ImageIO.WriteRgbPng(Path.Combine(dir, "images", stem + ".png"), scene.Image);
        ImageIO.WriteGrayPng(Path.Combine(dir, "semantic", stem + ".png"), scene.ClassMap, scene.Width, scene.Height);
        ImageIO.WriteRgbPng(Path.Combine(dir, "panoptic", stem + ".png"), PanopticPng(scene.SegmentMap, scene.Width, scene.Height));
    }
}
