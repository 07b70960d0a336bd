using System.Net;
using System.Text;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Data;
using DiffEgg.Formats;

namespace DiffEgg.Baseline;

/// <summary>How a `segment` run made its masks, as its page states it: the coarse masks and the edges.</summary>
public sealed record SegmentRunInfo(string CoarseMasks, string Edges)
{
    /// <summary>Writes the info as a small JSON file (atomically).</summary>
    public void Write(string path)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("coarse_masks", CoarseMasks);
            w.WriteString("edges", Edges);
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    public static SegmentRunInfo Read(string path)
    {
        using var doc = JsonRead.Parse(path);
        var r = new JsonRead(path);
        return new SegmentRunInfo(r.String(doc.RootElement, "coarse_masks", "segment info"), r.String(doc.RootElement, "edges", "segment info"));
    }
}

/// <summary>
/// The files of a `segment` output folder that depend on all images — <c>results.json</c> (refined), <c>baseline.json</c> (coarse),
/// <c>images.json</c> and <c>index.html</c> — written the same way by an unsharded run and by <c>diffegg merge</c>. The per-image files
/// (<c>edges/</c>, <c>overlays/&lt;stem&gt;.{image,before,after}.png</c>) are written by the run itself.
/// </summary>
public static class SegmentOutputs
{
    /// <param name="done">the images that have masks, in id order</param>
    /// <param name="all">every image of the run (the image list)</param>
    public static void Write(string outDir, IReadOnlyList<CocoImage> done, IReadOnlyList<CocoImage> all,
        IReadOnlyDictionary<long, List<CocoResult>> coarse, IReadOnlyDictionary<long, List<CocoResult>> refined, SegmentRunInfo info)
    {
        CocoFiles.WriteResults(Path.Combine(outDir, "results.json"), done.SelectMany(i => refined[i.Id]));
        CocoFiles.WriteResults(Path.Combine(outDir, "baseline.json"), done.SelectMany(i => coarse[i.Id]));
        ImageSet.Write(Path.Combine(outDir, "images.json"), all);
        AtomicFile.WriteAllText(Path.Combine(outDir, "index.html"), Html(done, coarse, refined, info));
    }

    /// <summary>Overlay file of an image: <c>overlays/&lt;stem&gt;.&lt;kind&gt;.png</c> (kind image, before or after).</summary>
    public static string OverlayPath(string outDir, string fileName, string kind) =>
        Path.Combine(outDir, "overlays", Path.GetFileNameWithoutExtension(fileName) + "." + kind + ".png");

    static string Html(IReadOnlyList<CocoImage> done, IReadOnlyDictionary<long, List<CocoResult>> coarse, IReadOnlyDictionary<long, List<CocoResult>> refined, SegmentRunInfo info)
    {
        var h = new StringBuilder();
        static string E(string x) => WebUtility.HtmlEncode(x);
        h.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>DiffEgg segment</title><style>body{font-family:sans-serif;margin:20px}" +
                 "figure{display:inline-block;margin:4px}img{width:256px;image-rendering:pixelated}figcaption{font-size:12px;color:#444}</style></head><body>");
        h.Append($"<h1>DiffEgg segment: {done.Count} image(s)</h1><p>Coarse masks: {E(info.CoarseMasks)}; edges: {E(info.Edges)}; refinement: Alg 4 (defaults). ");
        h.Append("Files: <code>results.json</code> (refined, COCO results), <code>baseline.json</code> (coarse), <code>images.json</code>, <code>edges/</code>.</p>");
        foreach (var im in done)
        {
            string stem = Uri.EscapeDataString(Path.GetFileNameWithoutExtension(im.FileName));
            h.Append($"<section><h3>{E(im.FileName)} (id {im.Id})</h3>");
            h.Append($"<figure><img src=\"overlays/{stem}.image.png\"><figcaption>image</figcaption></figure>");
            h.Append($"<figure><img src=\"overlays/{stem}.before.png\"><figcaption>coarse: {coarse[im.Id].Count} mask(s)</figcaption></figure>");
            h.Append($"<figure><img src=\"overlays/{stem}.after.png\"><figcaption>refined: {refined[im.Id].Count} mask(s)</figcaption></figure></section>");
        }
        h.Append("</body></html>");
        return h.ToString();
    }
}
