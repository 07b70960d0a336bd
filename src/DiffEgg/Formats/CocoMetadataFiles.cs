using System.Text.Json;
using DiffEgg.Common;

namespace DiffEgg.Formats;

/// <summary>The image list and the categories of any COCO-style JSON (the refinement and panoptic commands' inputs), read with the strict COCO JSON access.</summary>
public static class CocoMetadataFiles
{
    /// <summary>Reads only the <c>images</c> list (id, file_name, height, width) of any COCO JSON (instances, panoptic, image info).</summary>
    public static List<CocoImage> ReadImageInfo(string path)
    {
        using var doc = JsonRead.Parse(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: expected a COCO JSON object with an 'images' list");
        var list = new List<CocoImage>();
        CocoFiles.ReadImages(new JsonRead(path), root, list);
        for (int i = 0; i < list.Count; i++)
            if (string.IsNullOrWhiteSpace(list[i].FileName))
                throw new DiffEggException($"{path}: images[{i}] (id {list[i].Id}): field 'file_name': missing or empty");
        return list;
    }

    /// <summary>Reads categories (id, name, isthing) from a COCO-style JSON: a list of categories or an object with a <c>categories</c> list. Ids must fit a class-id PNG (0..254).</summary>
    public static List<CocoCategory> ReadCategories(string path)
    {
        using var doc = JsonRead.Parse(path);
        var r = new JsonRead(path);
        var root = doc.RootElement;
        var list = new List<CocoCategory>();
        if (root.ValueKind == JsonValueKind.Object) CocoFiles.ReadCategories(r, root, list);
        else if (root.ValueKind == JsonValueKind.Array) CocoFiles.ReadCategoryArray(r, root, "", list);
        else throw new DiffEggException($"{path}: expected a list of categories or an object with a 'categories' list");
        if (list.Count == 0) throw new DiffEggException($"{path}: no categories");
        foreach (var c in list)
            if (c.Id < 0 || c.Id > 254) throw new DiffEggException($"{path}: category id {c.Id} ('{c.Name}') cannot be stored in a class-id PNG (ids 0..254; 255 = ignore)");
        return list;
    }
}
