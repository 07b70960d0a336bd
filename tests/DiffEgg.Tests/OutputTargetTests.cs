using DiffEgg.Common;

namespace DiffEgg.Tests;

/// <summary>OutputTarget (writability checked up front, the output path named), AtomicFile's errors and StagedOutput (outputs replaced as one unit).</summary>
public class OutputTargetTests
{
    [Fact]
    public void UnwritableLocations_AreNamedNotTheProbe()
    {
        using var dir = new TempDir();
        // /proc refuses new files even for root
        var e = Assert.Throws<DiffEggException>(() => OutputTarget.CheckFile("/proc/nope", "--out"));
        Assert.StartsWith("/proc/nope: --out: cannot write there", e.Message);
        Assert.DoesNotContain("probe", e.Message);
        e = Assert.Throws<DiffEggException>(() => OutputTarget.CheckFolder("/proc/nope/deeper", "--out"));
        Assert.StartsWith("/proc/nope/deeper: --out: cannot write there (/proc:", e.Message);

        File.WriteAllText(dir.File("plain"), "x");
        e = Assert.Throws<DiffEggException>(() => OutputTarget.CheckFile(Path.Combine(dir.File("plain"), "sub", "out.json"), "--out"));
        Assert.Contains("is a file, not a folder", e.Message);
        Assert.Contains(dir.File("plain"), e.Message);
        e = Assert.Throws<DiffEggException>(() => OutputTarget.CheckFile(dir.Path, "--json"));
        Assert.StartsWith(dir.Path + ": --json: is a folder", e.Message);
        e = Assert.Throws<DiffEggException>(() => OutputTarget.CheckFolder(dir.File("plain"), "--out"));
        Assert.Contains("is a file, not a folder", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path, ".diffegg-probe*"));
    }

    [Fact]
    public void WritableLocations_PassWithoutCreatingAnything()
    {
        using var dir = new TempDir();
        OutputTarget.CheckFile(Path.Combine(dir.Path, "a", "b", "out.json"));
        OutputTarget.CheckFolder(Path.Combine(dir.Path, "c"));
        OutputTarget.CheckFolder(dir.Path);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void AtomicFileErrors_NameTheTargetNotTheTemporaryFile()
    {
        var e = Assert.Throws<DiffEggException>(() => AtomicFile.WriteAllText("/proc/nope", "x"));
        Assert.StartsWith("/proc/nope: cannot write", e.Message);
        Assert.DoesNotContain(".tmp", e.Message);
        using var dir = new TempDir();
        e = Assert.Throws<DiffEggException>(() => AtomicFile.WriteAllText(dir.Path, "x"));
        Assert.StartsWith(dir.Path + ": is a folder", e.Message);
    }

    [Fact]
    public void StagedOutput_ReplacesFoldersWhole_AndLeavesOtherEntries()
    {
        using var dir = new TempDir();
        string target = dir.File("out");
        Directory.CreateDirectory(Path.Combine(target, "pngs"));
        File.WriteAllText(Path.Combine(target, "pngs", "stale.png"), "old");
        File.WriteAllText(Path.Combine(target, "labels.json"), "old");
        File.WriteAllText(Path.Combine(target, "keep.txt"), "mine");

        using (var stage = StagedOutput.Begin(target))
        {
            Directory.CreateDirectory(stage.PathOf("pngs"));
            File.WriteAllText(stage.PathOf("pngs/new.png"), "new");
            File.WriteAllText(stage.PathOf("labels.json"), "new");
            // before Commit the target is as it was
            Assert.Equal("old", File.ReadAllText(Path.Combine(target, "labels.json")));
            stage.Commit();
        }
        Assert.Equal(new[] { "new.png" }, Directory.GetFiles(Path.Combine(target, "pngs")).Select(Path.GetFileName));
        Assert.Equal("new", File.ReadAllText(Path.Combine(target, "labels.json")));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(target, "keep.txt")));
        Assert.Equal(new[] { "keep.txt", "labels.json", "pngs" }, Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void StagedOutput_NotCommitted_LeavesNoTrace()
    {
        using var dir = new TempDir();
        string target = dir.File("out");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "labels.json"), "old");
        using (var stage = StagedOutput.Begin(target))
            File.WriteAllText(stage.PathOf("labels.json"), "new");
        Assert.Equal(new[] { "labels.json" }, Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));
        Assert.Equal("old", File.ReadAllText(Path.Combine(target, "labels.json")));

        string fresh = dir.File("fresh");
        using (var stage = StagedOutput.Begin(fresh))
            File.WriteAllText(stage.PathOf("labels.json"), "new");
        Assert.False(Directory.Exists(fresh)); // a folder the stage created for nothing is removed again
    }
}
