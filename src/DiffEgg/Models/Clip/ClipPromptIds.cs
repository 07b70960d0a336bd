using System.Text.Json;
using DiffEgg.Common;
using static TorchSharp.torch;

namespace DiffEgg.Models.Clip;

/// <summary>
/// Token ids of the EMPTY prompt, as SD's CLIPTokenizer produces them (<c>padding="max_length"</c>): [BOS, EOS, pad × (L−2)].
/// DiffEGG only ever conditions on the null text, so no BPE tokenizer is needed.
/// </summary>
public sealed record ClipPromptIds(long Bos, long Eos, long Pad, int Length, string Source)
{
    /// <summary>From <c>tokenizer/vocab.json</c> (<c>&lt;|startoftext|&gt;</c>, <c>&lt;|endoftext|&gt;</c>) and <c>special_tokens_map.json</c>'s pad token when present.</summary>
    public static ClipPromptIds FromTokenizerFolder(string folder, int length)
    {
        string vocabPath = Path.Combine(folder, "vocab.json");
        if (!File.Exists(vocabPath)) throw new DiffEggException($"{vocabPath}: file not found");
        Dictionary<string, long> vocab;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(vocabPath));
            vocab = doc.RootElement.EnumerateObject()
                .Where(p => p.Value.ValueKind == JsonValueKind.Number)
                .ToDictionary(p => p.Name, p => p.Value.GetInt64());
        }
        catch (JsonException e) { throw new DiffEggException($"{vocabPath}: invalid JSON ({e.Message})"); }
        long Id(string token, string file) => vocab.TryGetValue(token, out long id) ? id
            : throw new DiffEggException($"{file}: token '{token}' is not in the vocabulary");
        long bos = Id("<|startoftext|>", vocabPath);
        long eos = Id("<|endoftext|>", vocabPath);
        long pad = eos;
        string mapPath = Path.Combine(folder, "special_tokens_map.json");
        if (File.Exists(mapPath))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(mapPath));
                if (doc.RootElement.TryGetProperty("pad_token", out var p))
                {
                    string? tok = p.ValueKind == JsonValueKind.String ? p.GetString()
                        : p.ValueKind == JsonValueKind.Object && p.TryGetProperty("content", out var c) ? c.GetString() : null;
                    if (tok is null) throw new DiffEggException($"{mapPath}: key 'pad_token': expected a string or an object with 'content'");
                    pad = Id(tok, mapPath);
                }
            }
            catch (JsonException e) { throw new DiffEggException($"{mapPath}: invalid JSON ({e.Message})"); }
        }
        return new ClipPromptIds(bos, eos, pad, length, folder);
    }

    /// <summary>Fallback without tokenizer files: BOS = vocab−2, EOS = pad = vocab−1 (49406/49407 for SD 1.5's 49408 vocabulary).</summary>
    public static ClipPromptIds FromVocabSize(int vocabSize, int length) =>
        new(vocabSize - 2, vocabSize - 1, vocabSize - 1, length, $"vocab_size {vocabSize}");

    /// <summary>The empty-prompt ids [1, L]: BOS, EOS, then padding.</summary>
    public Tensor EmptyPrompt()
    {
        var ids = new long[Length];
        ids[0] = Bos;
        ids[1] = Eos;
        for (int i = 2; i < Length; i++) ids[i] = Pad;
        return tensor(ids, new long[] { 1, Length });
    }
}
