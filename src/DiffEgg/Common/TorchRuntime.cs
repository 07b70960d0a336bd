using System.Runtime.InteropServices;
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
    /// Fixes glibc's mmap threshold at 8 MiB for the rest of the process (<c>mallopt(M_MMAP_THRESHOLD)</c>, which also stops its dynamic
    /// growth to 32 MiB): tensors of 8 MiB and more are then mapped and unmapped one by one instead of being carved from heap arenas that
    /// glibc keeps. Called by the streaming attention code once its rows get large (a grid row of 4 MiB or more). Streaming EdgeKL
    /// allocates blocks of 8–100 MB thousands of times per image; on the embedded model at 256 px (<c>DiffEgg.Bench edges-stages
    /// models/embedded 256 --no-dense</c>) the default dynamic threshold let the peak grow to +1.5 GB (+3.4 GB with smaller blocks) for a
    /// working set of about +130 MiB. It is not set from the start because mapping every 8–16 MB tensor afresh costs page faults:
    /// 200 images at 64 px took 22.4 s instead of 19.4 s with it. DIFFEGG_MALLOC_DEFAULT=1 keeps glibc's defaults. Linux/glibc only.
    /// </summary>
    public static void BoundLargeAllocations()
    {
        if (Interlocked.Exchange(ref _mallocBounded, 1) == 1) return;
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("DIFFEGG_MALLOC_DEFAULT") == "1") return;
        try { _ = Mallopt(-3 /* M_MMAP_THRESHOLD */, 8 << 20); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc (e.g. musl): keep its allocator as is
    }

    static int _mallocBounded;

    [DllImport("libc", EntryPoint = "mallopt")] static extern int Mallopt(int param, int value);

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

    /// <summary>The TorchSharp package this build references: "cpu" or "cuda" (MSBuild property TorchBackend).</summary>
    public static string Backend { get; } =
        typeof(TorchRuntime).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .OfType<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "DiffEggTorchBackend")?.Value ?? "cpu";

    /// <summary>Resolves "cpu" / "cuda" / "cuda:N" to a device, with a clear error where CUDA is absent.</summary>
    public static Device ResolveDevice(string? name)
    {
        EnsureLoaded();
        name = string.IsNullOrWhiteSpace(name) ? "cpu" : name.Trim().ToLowerInvariant();
        if (name == "cpu") return CPU;
        if (name.StartsWith("cuda"))
        {
            if (Backend != "cuda")
                throw new DiffEggException($"--device {name}: this DiffEgg build is CPU-only (TorchSharp-cpu); build with `dotnet build -c Release -p:TorchBackend=cuda` for CUDA, or use --device cpu");
            if (!torch.cuda.is_available())
                throw new DiffEggException($"--device {name}: no CUDA device is visible to this CUDA build (check the driver and CUDA_VISIBLE_DEVICES); use --device cpu");
            return new Device(name);
        }
        throw new DiffEggException($"--device {name}: unknown device (use cpu or cuda).");
    }

    // at::globalContext().setUserEnabledMkldnn(bool) / userEnabledMkldnn() of libtorch (C++ symbols; TorchSharp 0.107 has no binding).
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")] static extern IntPtr GlobalContext();
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")] static extern void SetUserEnabledMkldnn(IntPtr ctx, [MarshalAs(UnmanagedType.I1)] bool enabled);
    [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")] [return: MarshalAs(UnmanagedType.I1)] static extern bool UserEnabledMkldnn(IntPtr ctx);

    /// <summary>Whether libtorch may use oneDNN (mkldnn) kernels; null where the switch cannot be reached (a libtorch without these symbols).</summary>
    public static bool? OneDnnEnabled
    {
        get
        {
            EnsureLoaded();
            try { return UserEnabledMkldnn(GlobalContext()); }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
        }
    }

    static bool TrySetOneDnn(bool enabled)
    {
        try { SetUserEnabledMkldnn(GlobalContext(), enabled); return true; }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return false; }
    }

    static bool _forwardMayUseOneDnn;
    static int _trainingDepth;

    /// <summary>
    /// Makes convolution gradients trustworthy for a training run and restores the previous setting when disposed. libtorch 2.10's
    /// oneDNN convolution backward (TorchSharp-cpu 0.107, measured on this project's AMD EPYC VMs) returns wrong input gradients — off by
    /// about their own size, sometimes NaN — while its forward is right; with oneDNN off the gradients equal conv_transpose2d of the output
    /// gradient. libtorch picks the convolution backend again when the backward runs, so a training step may run its forward pass with
    /// oneDNN (<see cref="ForwardConvolutions"/>, ~4× faster there) and its backward without. On entry the input gradient of a 16-channel
    /// 3×3 convolution computed that way is checked against conv_transpose2d; a libtorch that still gets it wrong is refused with a
    /// <see cref="DiffEggException"/>. Test: <c>EdgeGeneratorTests.TrainingRuntimeGivesConvolutionGradientsThatMatchTheirDefinition</c>.
    /// </summary>
    public static IDisposable TrainingConvolutions()
    {
        EnsureLoaded();
        bool? before = OneDnnEnabled;
        if (before == true) TrySetOneDnn(false);
        var restore = new Restore(before);
        _trainingDepth++;
        _forwardMayUseOneDnn = before == true;
        try
        {
            double err = ConvolutionGradientError();
            if (!(err <= 1e-6))
                throw new DiffEggException($"this libtorch computes wrong convolution gradients (max error {err:G3} against conv_transpose2d; oneDNN {(OneDnnEnabled is bool b ? (b ? "on" : "off") : "switch not found")} in the backward pass); training would silently be wrong");
        }
        catch { restore.Dispose(); throw; }
        return restore;
    }

    /// <summary>
    /// Inside <see cref="TrainingConvolutions"/>: oneDNN back on for a forward pass (where it was on before training) until disposed.
    /// The backward pass must run after disposal. Outside a training run it does nothing.
    /// </summary>
    public static IDisposable ForwardConvolutions()
    {
        bool on = _trainingDepth > 0 && _forwardMayUseOneDnn && TrySetOneDnn(true);
        return new ForwardScope(on);
    }

    sealed class ForwardScope(bool switchedOn) : IDisposable
    {
        bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            if (switchedOn) TrySetOneDnn(false);
        }
    }

    /// <summary>
    /// Max |autograd − definition| of the input gradient of a 3×3 convolution (16 → 3 channels, batch 2, 16×16) with trainable weights,
    /// forward inside <see cref="ForwardConvolutions"/>, backward outside (as the trainers run).
    /// </summary>
    public static double ConvolutionGradientError()
    {
        using var scope = torch.NewDisposeScope();
        using var g = new Generator(12345);
        var w = torch.randn(new long[] { 3, 16, 3, 3 }, generator: g).mul_(0.1).requires_grad_(true);
        var b = torch.randn(new long[] { 3 }, generator: g).requires_grad_(true);
        var x = torch.randn(new long[] { 2, 16, 16, 16 }, generator: g).requires_grad_(true);
        Tensor y;
        using (ForwardConvolutions()) y = nn.functional.conv2d(x * 1.0, w, b, padding: new long[] { 1, 1 });
        var gy = torch.randn(y.shape, generator: g);
        (y * gy).sum().backward();
        Tensor reference;
        using (torch.no_grad()) reference = nn.functional.conv_transpose2d(gy, w.detach(), padding: new long[] { 1, 1 });
        return (x.grad! - reference).abs().max().to_type(ScalarType.Float64).item<double>();
    }

    sealed class Restore(bool? before) : IDisposable
    {
        bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            _trainingDepth--;
            if (before == true) TrySetOneDnn(true);
        }
    }
}
