using DiffEgg.Formats.SafeTensors;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

/// <summary>torch.allclose-style comparison (|a − e| ≤ atol + rtol·|e|) that prints the max abs diff of every tensor.</summary>
public static class ParityAssert
{
    public const double Atol = 1e-4, Rtol = 1e-4;

    /// <summary>Asserts shape equality and allclose; logs "PARITY name maxabs" and returns the max abs diff.</summary>
    public static double Close(ITestOutputHelper output, string name, Tensor expected, Tensor actual, double atol = Atol, double rtol = Rtol)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = torch.NewDisposeScope();
        var e = expected.to_type(ScalarType.Float64);
        var a = actual.detach().to(CPU).to_type(ScalarType.Float64);
        var diff = (a - e).abs();
        double maxAbs = diff.max().item<double>();
        bool ok = diff.le(atol + rtol * e.abs()).all().item<bool>();
        output.WriteLine($"PARITY\t{name}\t[{string.Join(",", expected.shape)}]\t{maxAbs:E2}");
        Assert.True(ok && !double.IsNaN(maxAbs), $"{name}: max abs diff {maxAbs:E3} exceeds atol {atol} + rtol {rtol}·|expected|");
        return maxAbs;
    }

    /// <summary>Exact equality for integer tensors.</summary>
    public static void Exact(ITestOutputHelper output, string name, Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        var e = expected.to_type(ScalarType.Int64).data<long>().ToArray();
        var a = actual.to(CPU).to_type(ScalarType.Int64).data<long>().ToArray();
        Assert.Equal(e, a);
        output.WriteLine($"PARITY\t{name}\t[{string.Join(",", expected.shape)}]\texact");
    }

    /// <summary>Reads one tensor of a fixture io file.</summary>
    public static Tensor Io(string component, string key)
    {
        using var f = SafeTensorsFile.Open(TestPaths.Fixture(component, "io.safetensors"));
        return f.Read(key);
    }
}
