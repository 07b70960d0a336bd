using System.Globalization;
using System.Text;
using DiffEgg.Common;
using SkiaSharp;

namespace DiffEgg.Training;

/// <summary>
/// One optimizer step's record: mean loss over its micro-batches, learning rate, wall seconds since the run began (summed over resumes),
/// and the values of the log's extra columns (e.g. the loss terms), if any.
/// </summary>
public readonly record struct TrainingLogRow(long Step, double Loss, double LearningRate, double Seconds, double[]? Extra = null);

/// <summary>
/// Training log: CSV <c>step,loss,lr,seconds[,extra columns]</c> and a PNG line chart of the loss (raw and moving average; extra columns as
/// further moving averages), both written atomically.
/// </summary>
public sealed class TrainingLog
{
    readonly List<TrainingLogRow> _rows = new();
    public IReadOnlyList<TrainingLogRow> Rows => _rows;
    /// <summary>Names of the columns after <c>seconds</c> (e.g. <c>dice</c>, <c>rec</c>).</summary>
    public IReadOnlyList<string> ExtraColumns { get; }

    /// <summary>An empty log with the given extra columns.</summary>
    public TrainingLog(params string[] extraColumns) { ExtraColumns = extraColumns; }

    public void Add(TrainingLogRow row)
    {
        if ((row.Extra?.Length ?? 0) != ExtraColumns.Count)
            throw new ArgumentException($"log row has {row.Extra?.Length ?? 0} extra values, the log has {ExtraColumns.Count} extra columns");
        _rows.Add(row);
    }

    string Header => "step,loss,lr,seconds" + string.Concat(ExtraColumns.Select(c => "," + c));

    /// <summary>Reads a CSV written by <see cref="WriteCsv"/> with the same extra columns, keeping rows with step ≤ <paramref name="maxStep"/> (resume).</summary>
    public static TrainingLog ReadCsv(string path, long maxStep, params string[] extraColumns)
    {
        var log = new TrainingLog(extraColumns);
        if (!File.Exists(path)) return log;
        int line = 0, n = 4 + extraColumns.Length;
        foreach (var l in File.ReadLines(path))
        {
            line++;
            if (line == 1)
            {
                if (l != log.Header) throw new DiffEggException($"{path}: header is '{l}', expected '{log.Header}'");
                continue;
            }
            if (l.Length == 0) continue;
            var p = l.Split(',');
            var v = new double[n];
            bool ok = p.Length == n & long.TryParse(p[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long step);
            for (int i = 1; ok && i < n; i++) ok = double.TryParse(p[i], NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]);
            if (!ok) throw new DiffEggException($"{path}: line {line} is not '{log.Header}'");
            if (step <= maxStep) log.Add(new TrainingLogRow(step, v[1], v[2], v[3], extraColumns.Length == 0 ? null : v[4..]));
        }
        return log;
    }

    /// <summary>Writes <c>step,loss,lr,seconds[,extra]</c> rows (invariant culture).</summary>
    public void WriteCsv(string path)
    {
        var sb = new StringBuilder(Header).Append('\n');
        foreach (var r in _rows)
        {
            sb.Append(r.Step.ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(r.Loss.ToString("R", CultureInfo.InvariantCulture)).Append(',')
              .Append(r.LearningRate.ToString("R", CultureInfo.InvariantCulture)).Append(',')
              .Append(r.Seconds.ToString("F3", CultureInfo.InvariantCulture));
            foreach (var e in r.Extra ?? Array.Empty<double>()) sb.Append(',').Append(e.ToString("R", CultureInfo.InvariantCulture));
            sb.Append('\n');
        }
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    /// <summary>Moving average of the loss over the last <paramref name="window"/> steps (shorter at the start).</summary>
    public static double[] MovingAverage(IReadOnlyList<double> v, int window)
    {
        var o = new double[v.Count];
        double sum = 0;
        for (int i = 0; i < v.Count; i++)
        {
            sum += v[i];
            if (i >= window) sum -= v[i - window];
            o[i] = sum / Math.Min(i + 1, window);
        }
        return o;
    }

    /// <summary>
    /// Draws loss vs step (grey: per step, blue: moving average over 1/50 of the run, at least 5 steps; each extra column as a further
    /// moving average in its own colour, named in a legend) on a log10 y-axis as a PNG.
    /// </summary>
    public void WritePlot(string path, string title)
    {
        const int W = 900, H = 450, L = 70, R = 20, T = 40, B = 50;
        using var surface = SKSurface.Create(new SKImageInfo(W, H, SKColorType.Rgba8888, SKAlphaType.Premul));
        var c = surface.Canvas;
        c.Clear(SKColors.White);
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(225, 225, 225), StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var font = new SKFont(SKTypeface.Default, 13);
        c.DrawText(title, L, 24, font, text);
        var pts = _rows.Where(r => r.Loss > 0 && double.IsFinite(r.Loss)).ToList();
        var extraLogs = Enumerable.Range(0, ExtraColumns.Count)
            .Select(k => pts.Where(r => r.Extra![k] > 0 && double.IsFinite(r.Extra[k])).Select(r => Math.Log10(r.Extra![k])).ToList()).ToList();
        c.DrawRect(L, T, W - L - R, H - T - B, axis);
        if (pts.Count > 0)
        {
            double x0 = pts[0].Step, x1 = Math.Max(pts[^1].Step, x0 + 1);
            var logs = pts.Select(p => Math.Log10(p.Loss)).ToList();
            var all = logs.Concat(extraLogs.SelectMany(x => x)).ToList();
            double y0 = Math.Floor(all.Min() * 4) / 4, y1 = Math.Ceiling(all.Max() * 4) / 4;
            if (y1 - y0 < 0.25) y1 = y0 + 0.25;
            float X(double s) => (float)(L + (s - x0) / (x1 - x0) * (W - L - R));
            float Y(double lg) => (float)(H - B - (lg - y0) / (y1 - y0) * (H - T - B));
            for (double g = y0; g <= y1 + 1e-9; g += 0.25)
            {
                c.DrawLine(L, Y(g), W - R, Y(g), grid);
                c.DrawText(Math.Pow(10, g).ToString("G3", CultureInfo.InvariantCulture), 5, Y(g) + 4, font, text);
            }
            for (int k = 0; k <= 5; k++)
            {
                double s = x0 + (x1 - x0) * k / 5;
                c.DrawText(Math.Round(s).ToString(CultureInfo.InvariantCulture), X(s) - 10, H - B + 18, font, text);
            }
            c.DrawText("step", W / 2f, H - 10, font, text);
            c.DrawText("loss (log)", 5, T - 8, font, text);
            void Line(IReadOnlyList<long> xs, IReadOnlyList<double> ys, SKColor color, float width)
            {
                using var paint = new SKPaint { Color = color, StrokeWidth = width, IsAntialias = true, Style = SKPaintStyle.Stroke };
                using var path = new SKPath();
                for (int i = 0; i < xs.Count; i++)
                {
                    if (i == 0) path.MoveTo(X(xs[i]), Y(ys[i])); else path.LineTo(X(xs[i]), Y(ys[i]));
                }
                c.DrawPath(path, paint);
            }
            var steps = pts.Select(p => p.Step).ToList();
            int window = Math.Max(5, pts.Count / 50);
            Line(steps, logs, new SKColor(170, 170, 170), 1);
            var avg = MovingAverage(pts.Select(p => p.Loss).ToList(), window).Select(Math.Log10).ToList();
            Line(steps, avg, new SKColor(30, 90, 200), 2);
            var colors = new[] { new SKColor(220, 80, 30), new SKColor(40, 150, 60), new SKColor(150, 60, 170), new SKColor(200, 160, 0) };
            float legendX = W - R - 150;
            if (ExtraColumns.Count > 0) DrawLegend(0, "loss", new SKColor(30, 90, 200));
            for (int k = 0; k < ExtraColumns.Count; k++)
            {
                var rows = pts.Where(r => r.Extra![k] > 0 && double.IsFinite(r.Extra[k])).ToList();
                if (rows.Count == 0) continue;
                var ea = MovingAverage(rows.Select(r => r.Extra![k]).ToList(), window).Select(Math.Log10).ToList();
                Line(rows.Select(r => r.Step).ToList(), ea, colors[k % colors.Length], 2);
                DrawLegend(k + 1, ExtraColumns[k], colors[k % colors.Length]);
            }
            void DrawLegend(int row, string name, SKColor color)
            {
                using var paint = new SKPaint { Color = color, StrokeWidth = 3, Style = SKPaintStyle.Stroke };
                float y = T + 16 + 18 * row;
                c.DrawLine(legendX, y - 4, legendX + 24, y - 4, paint);
                c.DrawText(name, legendX + 30, y, font, text);
            }
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100) ?? throw new DiffEggException($"{path}: PNG encoding failed");
        AtomicFile.WriteAllBytes(path, data.Span);
    }
}
