using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Formats.SafeTensors;

/// <summary>Element types a safetensors file may declare (the subset DiffEgg reads).</summary>
public enum SafeTensorsDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL }

/// <summary>One header entry: the declared dtype, shape and byte range inside the data section.</summary>
public sealed record SafeTensorInfo(string Name, SafeTensorsDType DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A validated, memory-mapped view of a <c>.safetensors</c> file (8-byte LE header length, UTF-8 JSON header, raw LE data).
/// Tensors are copied out one at a time straight from the mapping, so a multi-GB file never needs two full copies in memory.
/// Every validation error is a <see cref="DiffEggException"/> that names the file and, where there is one, the key.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Upper bound on the JSON header (the reference implementation uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    readonly Dictionary<string, SafeTensorInfo> _entries;
    readonly long _dataStart;
    bool _disposed;

    public string Path { get; }
    public long FileLength { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Tensor names in file (data offset) order.</summary>
    public IReadOnlyList<string> Keys { get; }

    SafeTensorsFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new DiffEggException($"{path}: file not found");
        FileLength = new FileInfo(path).Length;
        if (FileLength < 8) throw new DiffEggException($"{path}: not a safetensors file: {FileLength} bytes is shorter than the 8-byte header length");

        byte[] headerBytes;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            Span<byte> len = stackalloc byte[8];
            fs.ReadExactly(len);
            ulong n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(len);
            if (n > (ulong)(FileLength - 8))
                throw new DiffEggException($"{path}: header length {n} exceeds the file size ({FileLength} bytes); the file is truncated or not a safetensors file");
            if (n > MaxHeaderBytes)
                throw new DiffEggException($"{path}: header length {n} exceeds the {MaxHeaderBytes}-byte limit");
            if (n < 2) throw new DiffEggException($"{path}: header length {n} is too small for a JSON object");
            headerBytes = new byte[n];
            fs.ReadExactly(headerBytes);
            _dataStart = 8 + (long)n;
        }

        string json;
        try { json = new UTF8Encoding(false, true).GetString(headerBytes); }
        catch (DecoderFallbackException) { throw new DiffEggException($"{path}: header is not valid UTF-8"); }

        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new DiffEggException($"{path}: header is not valid JSON ({e.Message})"); }

        var metadata = new Dictionary<string, string>();
        var entries = new Dictionary<string, SafeTensorInfo>();
        long dataLength = FileLength - _dataStart;
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: header must be a JSON object");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: key '__metadata__': must be an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new DiffEggException($"{path}: key '__metadata__.{m.Name}': metadata values must be strings");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                if (entries.ContainsKey(prop.Name)) throw new DiffEggException($"{path}: key '{prop.Name}': appears twice in the header");
                entries[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
            }
        }

        // Offsets must tile the data section exactly: sorted, contiguous, no overlap, no gap, nothing left over.
        var ordered = entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long expected = 0;
        SafeTensorInfo? prev = null;
        foreach (var e in ordered)
        {
            if (e.Begin < expected)
                throw new DiffEggException($"{path}: key '{e.Name}': data_offsets [{e.Begin}, {e.End}] overlap tensor '{prev!.Name}' [{prev.Begin}, {prev.End}]");
            if (e.Begin > expected)
                throw new DiffEggException($"{path}: key '{e.Name}': data_offsets [{e.Begin}, {e.End}] leave a gap after byte {expected} (tensors must be contiguous)");
            expected = e.End;
            prev = e;
        }
        if (expected != dataLength)
            throw new DiffEggException($"{path}: the tensors cover {expected} bytes but the data section has {dataLength} bytes (trailing data or missing tensors)");

        _entries = entries;
        Keys = ordered.Select(e => e.Name).ToList();
        Metadata = metadata;
        if (FileLength > 0)
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
    }

    static SafeTensorInfo ParseEntry(string path, string name, JsonElement v, long dataLength)
    {
        if (v.ValueKind != JsonValueKind.Object) throw new DiffEggException($"{path}: key '{name}': entry must be an object with dtype, shape and data_offsets");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new DiffEggException($"{path}: key '{name}': missing string field 'dtype'");
        if (!Enum.TryParse<SafeTensorsDType>(dt.GetString(), false, out var dtype) || !Enum.IsDefined(dtype) || char.IsDigit(dt.GetString()![0]))
            throw new DiffEggException($"{path}: key '{name}': unsupported dtype '{dt.GetString()}' (supported: {string.Join(", ", Enum.GetNames<SafeTensorsDType>())})");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new DiffEggException($"{path}: key '{name}': missing array field 'shape'");
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new DiffEggException($"{path}: key '{name}': shape entries must be non-negative integers");
            shape[i++] = dim;
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new DiffEggException($"{path}: key '{name}': missing field 'data_offsets' = [begin, end]");
        long[] be = off.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out long o) && o >= 0 ? o : -1).ToArray();
        if (be[0] < 0 || be[1] < 0) throw new DiffEggException($"{path}: key '{name}': data_offsets must be non-negative integers");
        if (be[1] < be[0]) throw new DiffEggException($"{path}: key '{name}': data_offsets [{be[0]}, {be[1]}] end before they begin");
        if (be[1] > dataLength)
            throw new DiffEggException($"{path}: key '{name}': data_offsets [{be[0]}, {be[1]}] exceed the data section ({dataLength} bytes); the file is truncated or corrupt");
        long elements;
        try { elements = shape.Aggregate(1L, (a, b) => checked(a * b)); }
        catch (OverflowException) { throw new DiffEggException($"{path}: key '{name}': shape [{string.Join(",", shape)}] is too large"); }
        long bytes;
        try { bytes = checked(elements * ElementSize(dtype)); }
        catch (OverflowException) { throw new DiffEggException($"{path}: key '{name}': shape [{string.Join(",", shape)}] is too large"); }
        if (bytes != be[1] - be[0])
            throw new DiffEggException($"{path}: key '{name}': dtype {dtype} × shape [{string.Join(",", shape)}] = {bytes} bytes, but data_offsets [{be[0]}, {be[1]}] span {be[1] - be[0]} bytes");
        return new SafeTensorInfo(name, dtype, shape, be[0], be[1]);
    }

    /// <summary>Opens and validates <paramref name="path"/> (header, offsets, sizes); the data stays memory-mapped until disposed.</summary>
    public static SafeTensorsFile Open(string path) => new(path);

    public bool Contains(string key) => _entries.ContainsKey(key);

    /// <summary>Header entry of <paramref name="key"/>, with an error naming file and key when absent.</summary>
    public SafeTensorInfo Info(string key) =>
        _entries.TryGetValue(key, out var e) ? e : throw new DiffEggException($"{Path}: key '{key}': not in the file");

    public static int ElementSize(SafeTensorsDType d) => d switch
    {
        SafeTensorsDType.F64 or SafeTensorsDType.I64 => 8,
        SafeTensorsDType.F32 or SafeTensorsDType.I32 => 4,
        SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.I16 => 2,
        _ => 1,
    };

    public static ScalarType ToScalarType(SafeTensorsDType d) => d switch
    {
        SafeTensorsDType.F64 => ScalarType.Float64,
        SafeTensorsDType.F32 => ScalarType.Float32,
        SafeTensorsDType.F16 => ScalarType.Float16,
        SafeTensorsDType.BF16 => ScalarType.BFloat16,
        SafeTensorsDType.I64 => ScalarType.Int64,
        SafeTensorsDType.I32 => ScalarType.Int32,
        SafeTensorsDType.I16 => ScalarType.Int16,
        SafeTensorsDType.I8 => ScalarType.Int8,
        SafeTensorsDType.U8 => ScalarType.Byte,
        _ => ScalarType.Bool,
    };

    /// <summary>Copies tensor <paramref name="key"/> out of the mapping as a new CPU tensor, converted to <paramref name="dtype"/> when given (F16/BF16 → F32 etc.).</summary>
    public Tensor Read(string key, ScalarType? dtype = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var e = Info(key);
        if (!BitConverter.IsLittleEndian) throw new DiffEggException($"{Path}: big-endian hosts are not supported");
        TorchRuntime.EnsureLoaded();
        var src = ToScalarType(e.DType);
        var t = torch.empty(e.Shape, src);
        if (e.ByteLength > 0) CopyInto(e, t);
        if (dtype is { } want && want != src)
        {
            if (!IsConvertible(src, want))
                throw new DiffEggException($"{Path}: key '{key}': cannot convert {e.DType} to {want}");
            var c = t.to_type(want);
            t.Dispose();
            return c;
        }
        return t;
    }

    /// <summary>Copies tensor <paramref name="key"/> straight from the mapping into <paramref name="destination"/> (CPU, contiguous, same dtype and shape): no intermediate tensor.</summary>
    public void ReadInto(string key, Tensor destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var e = Info(key);
        if (destination.device_type != DeviceType.CPU || !destination.is_contiguous() || destination.dtype != ToScalarType(e.DType))
            throw new ArgumentException($"{Path}: key '{key}': ReadInto needs a contiguous CPU {ToScalarType(e.DType)} tensor");
        if (!destination.shape.SequenceEqual(e.Shape))
            throw new DiffEggException($"{Path}: key '{key}': shape [{string.Join(",", e.Shape)}] does not match the destination [{string.Join(",", destination.shape)}]");
        if (e.ByteLength > 0) CopyInto(e, destination);
    }

    static bool IsConvertible(ScalarType from, ScalarType to)
    {
        static bool Fp(ScalarType s) => s is ScalarType.Float64 or ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16;
        return Fp(from) == Fp(to) || (!Fp(from) && Fp(to));
    }

    unsafe void CopyInto(SafeTensorInfo e, Tensor t)
    {
        byte* basePtr = null;
        var handle = _view!.SafeMemoryMappedViewHandle;
        handle.AcquirePointer(ref basePtr);
        try
        {
            byte* src = basePtr + _view.PointerOffset + _dataStart + e.Begin;
            if (e.ByteLength > int.MaxValue)
                throw new DiffEggException($"{Path}: key '{e.Name}': {e.ByteLength} bytes is larger than one tensor copy supports (2 GiB)");
            Span<byte> dst = t.bytes;   // fresh contiguous CPU tensor: a view of its storage
            new ReadOnlySpan<byte>(src, (int)e.ByteLength).CopyTo(dst);
        }
        finally { handle.ReleasePointer(); }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view?.Dispose();
        _map?.Dispose();
    }
}
