namespace Accel.Benchmarks.Paired;

/// <summary>The median of a sample and a distribution-free 95% confidence interval for it: the order statistics
/// whose ranks the binomial distribution B(n, 1/2) puts at 2.5% and 97.5% (no assumption about the shape of the
/// noise, which on this VM is neither normal nor symmetric).</summary>
internal readonly record struct MedianInterval(double Median, double Low, double High, int Count, double Confidence)
{
    public static MedianInterval Of(IEnumerable<double> values)
    {
        double[] s = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        int n = s.Length;
        if (n == 0)
        {
            return new MedianInterval(double.NaN, double.NaN, double.NaN, 0, 0);
        }

        double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        // Largest k with P(X < k) <= 2.5%, X ~ B(n, 1/2): [s(k), s(n-k+1)] (1-based) covers the median with >= 95%.
        int k = 0;
        double below = 0;
        for (int i = 0; i < n; i++)
        {
            below += Binomial(n, i) / Math.Pow(2, n);
            if (below > 0.025)
            {
                break;
            }

            k = i + 1;
        }

        if (k == 0)
        {
            return new MedianInterval(median, s[0], s[^1], n, 1 - 2 * Math.Pow(0.5, n)); // too few for 95%: min to max
        }

        double coverage = 1 - 2 * Enumerable.Range(0, k).Sum(i => Binomial(n, i) / Math.Pow(2, n));
        return new MedianInterval(median, s[k - 1], s[n - k], n, coverage);
    }

    public bool Contains(double x) => Low <= x && x <= High;

    private static double Binomial(int n, int k)
    {
        double r = 1;
        for (int i = 1; i <= k; i++)
        {
            r = r * (n - k + i) / i;
        }

        return r;
    }
}
