using BenchmarkDotNet.Running;
using DiffEgg.Bench;

// `mem R` runs one accumulation (16 SD 1.5 layers) and one EdgeKL at latent side R, printing the wall time and the
// peak resident memory each adds above the resident memory after setup (Linux: peak reset via /proc/self/clear_refs,
// read from VmHWM). Anything else goes to BenchmarkDotNet.
if (args.Length == 2 && args[0] == "mem" && int.TryParse(args[1], out int r))
{
    var b = new EdgesBenchmarks { R = r };
    b.Setup();
    b.EdgeKL_KL(); // warm-up of the native code paths (small effect on memory)
    GC.Collect();
    GC.WaitForPendingFinalizers();
    var (acc, tAcc) = Measure(() => b.Accumulate_SD15_16Layers());
    var (edge, tEdge) = Measure(() => b.EdgeKL_KL());
    Console.WriteLine($"R={r}: accumulate 16 layers {tAcc.sec:F2} s, peak +{tAcc.mib:F0} MiB; EdgeKL {tEdge.sec:F2} s, peak +{tEdge.mib:F0} MiB (checks {acc:G3} {edge:G3})");
    var split = b.AccumulateSplitTimes();
    Console.WriteLine($"R={r}: accumulate split: 16×Add {split.add:F2} s, Result {split.result:F2} s");
    b.Cleanup();
    return 0;
}
if (args.Length > 0 && args[0] == "refine") return DiffEgg.Bench.RefineBench.Run(args);
if (args.Length > 0 && args[0] == "refine-stress") return DiffEgg.Bench.RefineStress.Run(args);
if (args.Length > 1 && args[0] == "refine-ablation") return DiffEgg.Bench.RefineAblation.Run(args);
if (args.Length > 0 && args[0] == "refine-profile") return DiffEgg.Bench.RefineProfile.Run(args);
if (args.Length > 0 && args[0] == "coco-eval") return CocoEvalBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "maskapi-check") return MaskApiCheck.Run(args[1..]);
if (args.Length > 0 && args[0] == "panoptic-gen") return PanopticGen.Run(args[1..]);
if (args.Length > 0 && args[0] == "photo-reference") return PhotoReference.Run(args);
if (args.Length > 0 && args[0] == "photo-pairs") return PhotoReference.Pairs(args);
if (args.Length > 0 && args[0] == "mask-iou") return MaskIou.Run(args);
if (args.Length > 0 && args[0] == "unet-split") return UNetSplitProbe.Run(args);
if (args.Length > 1 && args[0] == "onestep-profile") return OneStepProfile.Run(args);
if (args.Length > 1 && args[0] == "baseline-probe") return BaselineProbe.Run(args);
if (args.Length > 2 && args[0] == "edges-stages") return EdgeStages.Run(args);
if (args.Length > 0 && args[0] == "unet-file") return UNetFile.Run(args);

if (args.Length >= 1 && args[0] == "unetmem")
{
    // Peak resident memory of one UNet forward per capture mode (VmHWM above the RSS after setup).
    foreach (var model in new[] { "fixture16", "quarter64" })
        foreach (var mode in Enum.GetValues<UNetBenchmarks.CaptureMode>())
        {
            var ub = new UNetBenchmarks { Model = model, Capture = mode };
            ub.Setup();
            ub.Forward(); // warm-up
            GC.Collect();
            var (_, m) = Measure(() => ub.Forward());
            Console.WriteLine($"unet {model} capture={mode}: {m.sec:F3} s, peak +{m.mib:F0} MiB");
            ub.Cleanup();
        }
    return 0;
}
if (args.Length == 2 && args[0] == "load")
{
    // Load time and peak RSS of UNet2DConditionModel.FromFolder(args[1]) in a fresh process.
    DiffEgg.Common.TorchRuntime.EnsureLoaded();
    double rss0 = Status("VmRSS:");
    var sw = System.Diagnostics.Stopwatch.StartNew();
    using var unet = DiffEgg.Models.UNet.UNet2DConditionModel.FromFolder(args[1]);
    double sec = sw.Elapsed.TotalSeconds;
    long bytes = unet.parameters().Sum(p => p.numel() * p.element_size());
    double peak = Status("VmHWM:"), after = Status("VmRSS:"), anon = Status("RssAnon:"), file = Status("RssFile:");
    var sw2 = System.Diagnostics.Stopwatch.StartNew();
    using (var fresh = new DiffEgg.Models.UNet.UNet2DConditionModel(unet.Config)) { }
    double build = sw2.Elapsed.TotalSeconds;
    Console.WriteLine($"load {args[1]}: {sec:F2} s (building a module with fresh init alone: {build:F2} s), params {bytes / 1048576.0:F1} MiB, RSS before {rss0 / 1024:F0} MiB, peak RSS during load {peak / 1024:F0} MiB, RSS after load {after / 1024:F0} MiB (anon {anon / 1024:F0}, file {file / 1024:F0})");
    return 0;
}
if (args.Length == 2 && args[0] == "save-quarter")
{
    // Writes a random-weight quarter-width SD 1.5 UNet folder (config + safetensors) for the load measurement.
    DiffEgg.Common.TorchRuntime.EnsureLoaded();
    TorchSharp.torch.manual_seed(0);
    using var unet = new DiffEgg.Models.UNet.UNet2DConditionModel(UNetBenchmarks.QuarterConfig);
    Directory.CreateDirectory(args[1]);
    DiffEgg.Formats.SafeTensors.SafeTensorsWriter.Save(Path.Combine(args[1], "diffusion_pytorch_model.safetensors"), unet.state_dict());
    File.WriteAllText(Path.Combine(args[1], "config.json"), "{\"_class_name\": \"UNet2DConditionModel\", \"block_out_channels\": [80, 160, 320, 320], \"norm_num_groups\": 16, \"attention_head_dim\": 8, \"cross_attention_dim\": 768, \"sample_size\": 64}");
    return 0;
}
if (args.Length is 2 or 3 && args[0] == "save-random-sd15" && (args.Length == 2 || args[2] == "--quarter"))
{
    // Fills a folder made by tools/sd15-config-folder.sh (unet/ and vae/ config.json) into a whole random-weight SD 1.5 model folder
    // (UNet, VAE, CLIP text encoder; seeded), so that `diffegg edges` runs on SD 1.5's structure end to end. --quarter: the UNet at 1/4 width.
    DiffEgg.Common.TorchRuntime.EnsureLoaded();
    TorchSharp.torch.manual_seed(0);
    string dir = args[1];
    if (args.Length == 3)
        File.WriteAllText(Path.Combine(dir, "unet", "config.json"), "{\"_class_name\": \"UNet2DConditionModel\", \"block_out_channels\": [80, 160, 320, 320], \"norm_num_groups\": 16, \"attention_head_dim\": 8, \"cross_attention_dim\": 768, \"sample_size\": 64}");
    Directory.CreateDirectory(Path.Combine(dir, "text_encoder"));
    File.WriteAllText(Path.Combine(dir, "text_encoder", "config.json"), "{\"architectures\": [\"CLIPTextModel\"], \"hidden_act\": \"quick_gelu\", \"hidden_size\": 768, \"intermediate_size\": 3072, \"layer_norm_eps\": 1e-05, \"max_position_embeddings\": 77, \"model_type\": \"clip_text_model\", \"num_attention_heads\": 12, \"num_hidden_layers\": 12, \"projection_dim\": 768, \"vocab_size\": 49408, \"bos_token_id\": 0, \"eos_token_id\": 2, \"pad_token_id\": 1}");
    DiffEgg.Models.Config.JsonConfig Cfg(string sub) => DiffEgg.Models.Config.JsonConfig.Load(Path.Combine(dir, sub, "config.json"));
    using (var unet = new DiffEgg.Models.UNet.UNet2DConditionModel(DiffEgg.Models.UNet.UNet2DConditionConfig.FromJson(Cfg("unet"))))
        DiffEgg.Formats.SafeTensors.SafeTensorsWriter.Save(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors"), unet.state_dict());
    using (var vae = new DiffEgg.Models.Vae.AutoencoderKL(DiffEgg.Models.Vae.AutoencoderKLConfig.FromJson(Cfg("vae"))))
        DiffEgg.Formats.SafeTensors.SafeTensorsWriter.Save(Path.Combine(dir, "vae", "diffusion_pytorch_model.safetensors"), vae.state_dict());
    using (var te = new DiffEgg.Models.Clip.CLIPTextModel(DiffEgg.Models.Clip.CLIPTextConfig.FromJson(Cfg("text_encoder"))))
        DiffEgg.Formats.SafeTensors.SafeTensorsWriter.Save(Path.Combine(dir, "text_encoder", "model.safetensors"), te.state_dict());
    Console.WriteLine($"{dir}: random-weight SD 1.5 folder written (unet{(args.Length == 3 ? " at 1/4 width" : "")}, vae, text_encoder)");
    return 0;
}
BenchmarkSwitcher.FromAssembly(typeof(EdgesBenchmarks).Assembly).Run(args);
return 0;

static (float value, (double sec, double mib) m) Measure(Func<float> f)
{
    File.WriteAllText("/proc/self/clear_refs", "5"); // reset VmHWM to the current RSS
    double before = Status("VmRSS:");
    var sw = System.Diagnostics.Stopwatch.StartNew();
    float v = f();
    double sec = sw.Elapsed.TotalSeconds;
    double peak = Status("VmHWM:");
    return (v, (sec, (peak - before) / 1024.0));
}

static double Status(string key) =>
    double.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
