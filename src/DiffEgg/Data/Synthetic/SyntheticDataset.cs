using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Formats;

namespace DiffEgg.Data.Synthetic;

/// <summary>File layout and writers of a synthetic scene folder (images/, semantic/, panoptic/ PNGs and the JSON ground truth).</summary>
public static class SyntheticDataset
{
    /// <summary>File stem of a scene: "train_000012" / "test_000012".</summary>
    public static string FileStem(SyntheticSplit split, int index) => $"{SplitName(split)}_{index:D6}";

    public static string SplitName(SyntheticSplit split) => split == SyntheticSplit.Test ? "test" : "train";

    /// <summary>COCO image id of a scene: global scene number + 1 (train 1.., test 1,000,001..), unique across splits.</summary>
    public static int ImageId(SyntheticSplit split, int index) => (int)SceneGenerator.SceneNumber(split, index) + 1;

    /// <summary>Writes the per-scene PNGs: images/STEM.png (RGB), semantic/STEM.png (category ids), panoptic/STEM.png (segment ids).</summary>
    public static void WriteScenePngs(string dir, string stem, Scene scene)
    {
        ImageIO.WriteRgbPng(Path.Combine(dir, "images", stem + ".png"), scene.Image);
        PanopticFiles.WriteClassIdPng(Path.Combine(dir, "semantic", stem + ".png"), scene.ClassMap, scene.Width, scene.Height);
        PanopticFiles.WritePng(Path.Combine(dir, "panoptic", stem + ".png"), scene.SegmentMap, scene.Width, scene.Height);
    }
}
