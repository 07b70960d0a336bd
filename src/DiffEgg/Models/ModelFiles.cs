using DiffEgg.Common;

namespace DiffEgg.Models;

/// <summary>Locates the weight file of a diffusers component folder.</summary>
public static class ModelFiles
{
    /// <summary>Returns <c>{stem}.safetensors</c> in <paramref name="folder"/>, else <c>{stem}.fp16.safetensors</c>; a clear error otherwise.</summary>
    public static string Weights(string folder, string stem)
    {
        foreach (var name in new[] { stem + ".safetensors", stem + ".fp16.safetensors" })
        {
            var p = Path.Combine(folder, name);
            if (File.Exists(p)) return p;
        }
        if (File.Exists(Path.Combine(folder, stem + ".bin")) || File.Exists(Path.Combine(folder, "pytorch_model.bin")))
            throw new DiffEggException($"{folder}: only PyTorch pickle weights (.bin) found; DiffEgg reads safetensors only (convert with diffusers' save_pretrained(safe_serialization=True))");
        throw new DiffEggException($"{Path.Combine(folder, stem + ".safetensors")}: weights file not found");
    }
}
