using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "coco-eval") return CocoEvalBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "maskapi-check") return MaskApiCheck.Run(args[1..]);
if (args.Length > 0 && args[0] == "panoptic-gen") return PanopticGen.Run(args[1..]);

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
