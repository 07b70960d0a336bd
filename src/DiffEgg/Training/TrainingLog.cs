using System.Globalization;
using System.Text;
using DiffEgg.Common;
using SkiaSharp;

namespace DiffEgg.Training;

/// <summary>One optimizer step's record: mean loss over its micro-batches, learning rate and wall seconds since the run began (summed over resumes).</summary>
public readonly record struct TrainingLogRow(long Step, double Loss, double LearningRate, double Seconds);

/// <summary>Training log: CSV <c>step,loss,lr,seconds</c> and a PNG line chart of the loss (raw and moving average), both written atomically.</summary>
public sealed class TrainingLog
{
    readonly List<TrainingLogRow> _rows = new();
    public IReadOnlyList<TrainingLogRow> Rows => _rows;

    public void Add(TrainingLogRow row) => _rows.Add(row);

    /// <summary>Reads a CSV written by <see cref="WriteCsv"/>, keeping rows with step ≤ <paramref name="maxStep"/> (resume).</summary>
    public static TrainingLog ReadCsv(string path, long maxStep)
    {
        var log = new TrainingLog();
        if (!File.Exists(path)) return log;
        int line = 0;
        foreach (var l in File.ReadLines(path))
        {
            line++;
            if (line == 1 || l.Length == 0) continue;
            var p = l.Split(',');
            if (p.Length != 4
                || !long.TryParse(p[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long step)
                || !double.TryParse(p[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double loss)
                || !double.TryParse(p[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double lr)
                || !double.TryParse(p[3], NumberStyles.Float, CultureInfo.InvariantCulture, out double sec))
                throw new DiffEggException($"{path}: line {line} is not 'step,loss,lr,seconds'");
            if (step <= maxStep) log.Add(new TrainingLogRow(step, loss, lr, sec));
        }
        return log;
    }

    /// <summary>Writes <c>step,loss,lr,seconds</c> rows (invariant culture).</summary>
    public void WriteCsv(string path)
    {
        var sb = new StringBuilder("step,loss,lr,seconds\n");
        foreach (var r in _rows)
            sb.Append(r.Step.ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(r.Loss.ToString("R", CultureInfo.InvariantCulture)).Append(',')
              .Append(r.LearningRate.ToString("R", CultureInfo.InvariantCulture)).Append(',')
              .Append(r.Seconds.ToString("F3", CultureInfo.InvariantCulture)).Append('\n');
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

    /// <summary>Draws loss vs step (grey: per step, blue: moving average over 1/50 of the run, at least 5 steps) on a log10 y-axis as a PNG.</summary>
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
        c.DrawRect(L, T, W - L - R, H - T - B, axis);
        if (pts.Count > 0)
        {
            double x0 = pts[0].Step, x1 = Math.Max(pts[^1].Step, x0 + 1);
            var logs = pts.Select(p => Math.Log10(p.Loss)).ToList();
            double y0 = Math.Floor(logs.Min() * 4) / 4, y1 = Math.Ceiling(logs.Max() * 4) / 4;
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
            void Line(IReadOnlyList<double> ys, SKColor color, float width)
            {
                using var paint = new SKPaint { Color = color, StrokeWidth = width, IsAntialias = true, Style = SKPaintStyle.Stroke };
                using var path = new SKPath();
                for (int i = 0; i < pts.Count; i++)
                {
                    if (i == 0) path.MoveTo(X(pts[i].Step), Y(ys[i])); else path.LineTo(X(pts[i].Step), Y(ys[i]));
                }
                c.DrawPath(path, paint);
            }
            Line(logs, new SKColor(170, 170, 170), 1);
            var avg = MovingAverage(pts.Select(p => p.Loss).ToList(), Math.Max(5, pts.Count / 50)).Select(Math.Log10).ToList();
            Line(avg, new SKColor(30, 90, 200), 2);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100) ?? throw new DiffEggException($"{path}: PNG encoding failed");
        AtomicFile.WriteAllBytes(path, data.Span);
    }
}
