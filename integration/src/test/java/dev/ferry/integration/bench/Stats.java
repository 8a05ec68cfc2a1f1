package dev.ferry.integration.bench;

import java.util.Arrays;
import java.util.List;
import java.util.function.ToDoubleFunction;

/**
 * Median and p95 of a set of measurements. The median of an even count is the mean of the two
 * middle values; p95 is the nearest-rank percentile (the ⌈0.95·n⌉-th smallest value: the 19th of
 * 20), so it is always a value that was measured.
 */
final class Stats {
  private Stats() {}

  static <T> double median(List<T> xs, ToDoubleFunction<T> f) {
    double[] v = sorted(xs, f);
    if (v.length == 0) {
      return Double.NaN;
    }
    int mid = v.length / 2;
    return v.length % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  }

  static <T> double p95(List<T> xs, ToDoubleFunction<T> f) {
    return percentile(xs, f, 95);
  }

  /** Nearest-rank percentile. */
  static <T> double percentile(List<T> xs, ToDoubleFunction<T> f, int pct) {
    double[] v = sorted(xs, f);
    if (v.length == 0) {
      return Double.NaN;
    }
    int rank = (int) Math.ceil(pct / 100.0 * v.length);
    return v[Math.max(0, Math.min(v.length, rank) - 1)];
  }

  static <T> double min(List<T> xs, ToDoubleFunction<T> f) {
    double[] v = sorted(xs, f);
    return v.length == 0 ? Double.NaN : v[0];
  }

  static <T> double max(List<T> xs, ToDoubleFunction<T> f) {
    double[] v = sorted(xs, f);
    return v.length == 0 ? Double.NaN : v[v.length - 1];
  }

  private static <T> double[] sorted(List<T> xs, ToDoubleFunction<T> f) {
    double[] v = xs.stream().mapToDouble(f).toArray();
    Arrays.sort(v);
    return v;
  }
}
