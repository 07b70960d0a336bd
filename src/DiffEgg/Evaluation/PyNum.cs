using System.Numerics;

namespace DiffEgg.Evaluation;

/// <summary>Number handling that reproduces numpy/Python to the last digit: linspace, pairwise summation (np.mean), and "{:.Nf}" formatting.</summary>
public static class PyNum
{
    /// <summary>np.linspace(start, stop, num) with endpoint: y[i] = i·((stop−start)/(num−1)) + start, last value set to stop.</summary>
    public static double[] Linspace(double start, double stop, int num)
    {
        var y = new double[num];
        if (num == 0) return y;
        if (num == 1) { y[0] = start; return y; }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[num - 1] = stop;
        return y;
    }

    /// <summary>numpy's pairwise summation of float64 (np.add.reduce on a contiguous array: 8 accumulators, blocks of 128, halving split at multiples of 8).</summary>
    public static double PairwiseSum(ReadOnlySpan<double> a)
    {
        int n = a.Length;
        if (n < 8)
        {
            double res = -0.0;
            for (int i = 0; i < n; i++) res += a[i];
            return res;
        }
        if (n <= 128)
        {
            double r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
            int i;
            for (i = 8; i < n - (n % 8); i += 8)
            {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3];
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7];
            }
            double res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < n; i++) res += a[i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return PairwiseSum(a[..n2]) + PairwiseSum(a[n2..]);
    }

    /// <summary>np.mean of a float64 vector (pairwise sum divided by the count); NaN for an empty vector.</summary>
    public static double Mean(ReadOnlySpan<double> a) => a.Length == 0 ? double.NaN : PairwiseSum(a) / a.Length;

    /// <summary>Python's format(v, '.{digits}f'): the exact binary value rounded half-to-even, "nan"/"inf" as Python writes them.</summary>
    public static string Fixed(double v, int digits)
    {
        if (double.IsNaN(v)) return "nan";
        if (double.IsInfinity(v)) return v > 0 ? "inf" : "-inf";
        bool neg = double.IsNegative(v);
        long bits = BitConverter.DoubleToInt64Bits(Math.Abs(v));
        int e = (int)((bits >> 52) & 0x7FF);
        long m = bits & ((1L << 52) - 1);
        if (e == 0) e = 1; else m |= 1L << 52;
        e -= 1075;
        BigInteger num = new BigInteger(m) * BigInteger.Pow(10, digits), den = BigInteger.One;
        if (e >= 0) num <<= e; else den <<= -e;
        var q = BigInteger.DivRem(num, den, out var rem);
        int c = (rem * 2).CompareTo(den);
        if (c > 0 || (c == 0 && !q.IsEven)) q += 1;
        string s = q.ToString().PadLeft(digits + 1, '0');
        if (digits > 0) s = s[..^digits] + "." + s[^digits..];
        return (neg ? "-" : "") + s;
    }
}
