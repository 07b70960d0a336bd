namespace DiffEgg.Data.Synthetic;

/// <summary>The shape of a thing; its thing category.</summary>
public enum ShapeKind { Ellipse, Rectangle, Polygon, Blob }

/// <summary>
/// A shape placed in the image: centre, rotation (a unit vector) and a point test in its own frame.
/// Point tests use only +, −, ×, ÷ and comparisons, so rasterisation is bit-exact.
/// </summary>
public abstract class Shape
{
    public abstract ShapeKind Kind { get; }
    public double Cx { get; set; }
    public double Cy { get; set; }
    /// <summary>Rotation as (cos, sin).</summary>
    public (double C, double S) Rotation { get; init; }
    /// <summary>Radius of a disc around the centre that contains the whole shape.</summary>
    public abstract double Extent { get; }

    /// <summary>Image point → object frame (u along the rotated x axis).</summary>
    public (double U, double V) ToLocal(double x, double y)
    {
        double dx = x - Cx, dy = y - Cy;
        return (Rotation.C * dx + Rotation.S * dy, -Rotation.S * dx + Rotation.C * dy);
    }

    /// <summary>True if the image point (x, y) lies inside the shape.</summary>
    public bool Contains(double x, double y)
    {
        double dx = x - Cx, dy = y - Cy;
        double e = Extent;
        if (dx * dx + dy * dy > e * e) return false;
        var (u, v) = ToLocal(x, y);
        return ContainsLocal(u, v);
    }

    protected abstract bool ContainsLocal(double u, double v);

    /// <summary>Draws a random shape of the given kind at (cx, cy); k = size/64 scales all lengths.</summary>
    public static Shape Random(ShapeKind kind, double cx, double cy, Xoshiro256 rng, double k)
    {
        var rot = rng.UnitVector();
        switch (kind)
        {
            case ShapeKind.Ellipse:
                return new EllipseShape(rng.Range(5.5, 13) * k, rng.Range(4.5, 10) * k) { Cx = cx, Cy = cy, Rotation = rot };
            case ShapeKind.Rectangle:
                return new RectangleShape(rng.Range(4.5, 12) * k, rng.Range(3.5, 9) * k) { Cx = cx, Cy = cy, Rotation = rot };
            case ShapeKind.Polygon:
            {
                int n = rng.NextInt(3, 6);
                double r = rng.Range(7, 13) * k;
                var verts = new (double U, double V)[n];
                // angles: n sorted, roughly evenly spread; vertex directions via cos/sin computed once per object
                double start = rng.Range(0, 2 * Math.PI);
                for (int i = 0; i < n; i++)
                {
                    double a = start + 2 * Math.PI * (i + rng.Range(-0.3, 0.3)) / n;
                    double ri = r * rng.Range(0.7, 1.0);
                    verts[i] = (ri * Math.Cos(a), ri * Math.Sin(a));
                }
                return new PolygonShape(verts) { Cx = cx, Cy = cy, Rotation = rot };
            }
            default:
            {
                int n = rng.NextInt(3, 5);
                var balls = new (double U, double V, double R)[n];
                for (int i = 0; i < n; i++)
                {
                    var d = rng.UnitVector();
                    double off = rng.Range(0, 6) * k;
                    balls[i] = (d.C * off, d.S * off, rng.Range(3.5, 6.5) * k);
                }
                return new BlobShape(balls) { Cx = cx, Cy = cy, Rotation = rot };
            }
        }
    }
}

public sealed class EllipseShape : Shape
{
    readonly double _a, _b;
    public EllipseShape(double a, double b) { _a = a; _b = b; }
    public override ShapeKind Kind => ShapeKind.Ellipse;
    public override double Extent => Math.Max(_a, _b);
    protected override bool ContainsLocal(double u, double v) => (u * u) / (_a * _a) + (v * v) / (_b * _b) <= 1;
}

public sealed class RectangleShape : Shape
{
    readonly double _a, _b;
    public RectangleShape(double halfWidth, double halfHeight) { _a = halfWidth; _b = halfHeight; }
    public override ShapeKind Kind => ShapeKind.Rectangle;
    public override double Extent => Math.Sqrt(_a * _a + _b * _b);
    protected override bool ContainsLocal(double u, double v) => Math.Abs(u) <= _a && Math.Abs(v) <= _b;
}

/// <summary>A star-shaped polygon around its centre; inside test by the even-odd crossing rule.</summary>
public sealed class PolygonShape : Shape
{
    readonly (double U, double V)[] _v;
    readonly double _extent;
    public PolygonShape((double U, double V)[] vertices)
    {
        _v = vertices;
        _extent = vertices.Max(p => Math.Sqrt(p.U * p.U + p.V * p.V));
    }
    public override ShapeKind Kind => ShapeKind.Polygon;
    public override double Extent => _extent;
    protected override bool ContainsLocal(double u, double v)
    {
        bool inside = false;
        for (int i = 0, j = _v.Length - 1; i < _v.Length; j = i++)
        {
            var (ui, vi) = _v[i];
            var (uj, vj) = _v[j];
            if ((vi > v) != (vj > v) && u < (uj - ui) * (v - vi) / (vj - vi) + ui) inside = !inside;
        }
        return inside;
    }
}

/// <summary>A metaball blob: inside where Σ rᵢ² / dᵢ² ≥ 1 over its balls (a smooth union of discs).</summary>
public sealed class BlobShape : Shape
{
    readonly (double U, double V, double R)[] _balls;
    readonly double _extent;
    public BlobShape((double U, double V, double R)[] balls)
    {
        _balls = balls;
        // Σ r²/d² ≥ 1 needs some dᵢ ≤ rᵢ·sqrt(n); bound the extent by that.
        double sn = Math.Sqrt(balls.Length);
        _extent = balls.Max(b => Math.Sqrt(b.U * b.U + b.V * b.V) + b.R * sn);
    }
    public override ShapeKind Kind => ShapeKind.Blob;
    public override double Extent => _extent;
    protected override bool ContainsLocal(double u, double v)
    {
        double f = 0;
        foreach (var (bu, bv, r) in _balls)
        {
            double du = u - bu, dv = v - bv;
            double d2 = du * du + dv * dv;
            if (d2 <= r * r) return true;
            f += r * r / d2;
        }
        return f >= 1;
    }
}
