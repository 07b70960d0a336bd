using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "refine") return DiffEgg.Bench.RefineBench.Run(args);
if (args.Length > 0 && args[0] == "refine-profile") return DiffEgg.Bench.RefineProfile.Run(args);
if (args.Length > 0 && args[0] == "coco-eval") return CocoEvalBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "maskapi-check") return MaskApiCheck.Run(args[1..]);
if (args.Length > 0 && args[0] == "panoptic-gen") return PanopticGen.Run(args[1..]);

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
