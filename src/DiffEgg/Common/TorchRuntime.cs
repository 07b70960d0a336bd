using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Common;

/// <summary>One place that initialises TorchSharp for DiffEgg and turns a broken native load into a clear message.</summary>
public static class TorchRuntime
{
    static int _initialised;

    /// <summary>Loads libtorch (throws <see cref="DiffEggException"/> with a readable reason when the native library fails).</summary>
    public static void EnsureLoaded()
    {
        if (Interlocked.Exchange(ref _initialised, 1) == 1) return;
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            QuietNativeWarnings();
        }
        catch (Exception e)
        {
            _initialised = 0;
            throw new DiffEggException(
                "TorchSharp's native library could not be loaded (" + e.GetBaseException().Message + "). " +
                "Rebuild with `dotnet build`: the build marks libLibTorchSharp.so's GLIBCXX_3.4.32 requirement weak on systems whose libstdc++ lacks it.", e);
        }
    }

    /// <summary>
    /// Raises libtorch's C++ log threshold (c10's exported <c>FLAGS_caffe2_log_level</c>) from WARNING to ERROR, so that native warnings
    /// such as "Could not initialize NNPACK! Reason: Unsupported hardware." (printed at every convolution on CPUs without NNPACK support)
    /// do not flood stderr between DiffEgg's own one-line messages. Set DIFFEGG_TORCH_WARNINGS=1 to keep them. Does nothing where the
    /// symbol is not found.
    /// </summary>
    static void QuietNativeWarnings()
    {
        if (Environment.GetEnvironmentVariable("DIFFEGG_TORCH_WARNINGS") == "1") return;
        foreach (var name in new[] { "libc10.so", "c10.dll", "libc10.dylib" })
        {
            if (!System.Runtime.InteropServices.NativeLibrary.TryLoad(name, typeof(torch).Assembly, null, out var lib)) continue;
            if (System.Runtime.InteropServices.NativeLibrary.TryGetExport(lib, "FLAGS_caffe2_log_level", out var flag))
                System.Runtime.InteropServices.Marshal.WriteInt32(flag, 2); // c10 severities: 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL
            return;
        }
    }

    /// <summary>Resolves "cpu" / "cuda" / "cuda:N" to a device, with a clear error where CUDA is absent.</summary>
    public static Device ResolveDevice(string? name)
    {
        EnsureLoaded();
        name = string.IsNullOrWhiteSpace(name) ? "cpu" : name.Trim().ToLowerInvariant();
        if (name == "cpu") return CPU;
        if (name.StartsWith("cuda"))
        {
            if (!torch.cuda.is_available())
                throw new DiffEggException($"--device {name}: this DiffEgg build uses TorchSharp-cpu, or no CUDA device is visible; use --device cpu.");
            return new Device(name);
        }
        throw new DiffEggException($"--device {name}: unknown device (use cpu or cuda).");
    }
}
