using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "refine") return DiffEgg.Bench.RefineBench.Run(args);
if (args.Length > 0 && args[0] == "refine-profile") return DiffEgg.Bench.RefineProfile.Run(args);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
