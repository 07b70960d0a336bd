using DiffEgg.Data;
using DiffEgg.Edges;

namespace DiffEgg.Tests;

public class SobelEdgesTests
{
    static RgbImage VerticalStep(int h, int w, int firstBright, bool redOnly)
    {
        var img = new RgbImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = firstBright; x < w; x++)
            {
                int p = 3 * (y * w + x);
                img.Pixels[p] = 255;
                if (!redOnly) { img.Pixels[p + 1] = 255; img.Pixels[p + 2] = 255; }
            }
        return img;
    }

    [Fact]
    public void SobelPeaksOnTheStepColumns()
    {
        const int h = 8, w = 12;
        var m = SobelEdges.Compute(VerticalStep(h, w, 6, false));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                // the step lies between columns 5 and 6: gx = (1 − 0)·(1 + 2 + 1) = 4 there, 0 elsewhere
                float expected = x == 5 || x == 6 ? 4f : 0f;
                Assert.Equal(expected, m[y * w + x], 5);
            }
    }

    [Fact]
    public void BlurredAndPerChannelSobelStillPeakOnTheStep()
    {
        const int h = 8, w = 12;
        var blurred = SobelEdges.Compute(VerticalStep(h, w, 6, false), blurSigma: 1.5);
        var red = SobelEdges.Compute(VerticalStep(h, w, 6, true), channels: SobelChannels.MaxChannel);
        for (int y = 0; y < h; y++)
        {
            var row = blurred.Skip(y * w).Take(w).ToArray();
            float max = row.Max();
            Assert.True(row[5] == max || row[6] == max);
            Assert.True(row[5] > 2 * row[2] && row[6] > 2 * row[9]);
            Assert.Equal(4f, red[y * w + 5], 5);
            Assert.Equal(0f, red[y * w + 2], 5);
        }
    }
}
