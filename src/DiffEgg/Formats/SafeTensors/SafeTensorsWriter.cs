using System.Text;
using System.Text.Json;
using DiffEgg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Formats.SafeTensors;

/// <summary>Writes <c>.safetensors</c> files (standard layout: names sorted, header padded with spaces to 8 bytes) atomically via <see cref="AtomicFile"/>.</summary>
public static class SafeTensorsWriter
{
    /// <summary>Saves <paramref name="tensors"/> to <paramref name="path"/>; floating tensors are stored as <paramref name="floatType"/> (F32 or F16), integer/bool tensors keep their type.</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, SafeTensorsDType floatType = SafeTensorsDType.F32,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (floatType is not (SafeTensorsDType.F32 or SafeTensorsDType.F16))
            throw new ArgumentException($"floatType must be F32 or F16, not {floatType}", nameof(floatType));
        TorchRuntime.EnsureLoaded();
        var items = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var dup = items.GroupBy(kv => kv.Key).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new ArgumentException($"{path}: key '{dup.Key}' given twice");
        if (items.Any(kv => kv.Key == "__metadata__")) throw new ArgumentException($"{path}: '__metadata__' is reserved");

        var entries = new List<(string Name, SafeTensorsDType DType, long[] Shape, long Begin, long End, Tensor Source)>();
        long offset = 0;
        foreach (var (name, t) in items)
        {
            var dt = StoredType(path, name, t.dtype, floatType);
            long bytes = t.numel() * SafeTensorsFile.ElementSize(dt);
            entries.Add((name, dt, t.shape, offset, offset + bytes, t));
            offset += bytes;
        }

        var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (k, v) in metadata ?? new Dictionary<string, string> { ["format"] = "pt" }) w.WriteString(k, v);
            w.WriteEndObject();
            foreach (var e in entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", e.DType.ToString());
                w.WriteStartArray("shape"); foreach (var d in e.Shape) w.WriteNumberValue(d); w.WriteEndArray();
                w.WriteStartArray("data_offsets"); w.WriteNumberValue(e.Begin); w.WriteNumberValue(e.End); w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < pad; i++) header.WriteByte((byte)' ');
        byte[] headerBytes = header.ToArray();

        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
            s.Write(len);
            s.Write(headerBytes);
            foreach (var e in entries)
            {
                using var scope = torch.NewDisposeScope();
                var c = e.Source.detach().to(CPU).to_type(SafeTensorsFile.ToScalarType(e.DType)).contiguous();
                if (c.numel() > 0) s.Write(c.bytes);
            }
        });
    }

    static SafeTensorsDType StoredType(string path, string name, ScalarType t, SafeTensorsDType floatType) => t switch
    {
        ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16 => floatType,
        ScalarType.Int64 => SafeTensorsDType.I64,
        ScalarType.Int32 => SafeTensorsDType.I32,
        ScalarType.Int16 => SafeTensorsDType.I16,
        ScalarType.Int8 => SafeTensorsDType.I8,
        ScalarType.Byte => SafeTensorsDType.U8,
        ScalarType.Bool => SafeTensorsDType.BOOL,
        _ => throw new ArgumentException($"{path}: key '{name}': dtype {t} cannot be stored"),
    };
}
