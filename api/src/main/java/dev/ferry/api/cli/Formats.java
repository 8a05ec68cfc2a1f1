package dev.ferry.api.cli;

import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** How the CLI shows numbers, sizes, times and tables to a person. */
final class Formats {
  private static final DateTimeFormatter LOCAL_TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss", Locale.ROOT);

  private static final DateTimeFormatter LOCAL_TIME_MILLIS =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS", Locale.ROOT);

  private Formats() {}

  /** 1536 → "1.5 KiB"; below 1 KiB, "512 B". */
  static String bytes(long n) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = n;
    int u = 0;
    while (Math.abs(v) >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? n + " B" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }

  /** Microseconds as milliseconds with three decimals: 12345 → "12.345 ms". */
  static String millis(long micros) {
    return String.format(Locale.ROOT, "%.3f ms", micros / 1000.0);
  }

  /** Microseconds as milliseconds with three decimals and no unit, for tables: "12.345". */
  static String millisNumber(long micros) {
    return String.format(Locale.ROOT, "%.3f", micros / 1000.0);
  }

  /** An instant in the local time zone, to the second; null → "-". */
  static String time(Instant t, ZoneId zone) {
    return t == null ? "-" : LOCAL_TIME.format(t.atZone(zone));
  }

  /** An instant in the local time zone, to the millisecond; null → "-". */
  static String timeMillis(Instant t, ZoneId zone) {
    return t == null ? "-" : LOCAL_TIME_MILLIS.format(t.atZone(zone));
  }

  /** A string, or "-" when it is null or empty. */
  static String orDash(String s) {
    return s == null || s.isEmpty() ? "-" : s;
  }

  /** Rows as left-aligned columns separated by two spaces, without trailing spaces. */
  static String table(List<String> header, List<List<String>> rows) {
    List<List<String>> all = new ArrayList<>();
    all.add(header);
    all.addAll(rows);
    int[] widths = new int[header.size()];
    for (List<String> row : all) {
      for (int i = 0; i < row.size(); i++) {
        widths[i] = Math.max(widths[i], row.get(i).length());
      }
    }
    StringBuilder b = new StringBuilder();
    for (List<String> row : all) {
      StringBuilder line = new StringBuilder();
      for (int i = 0; i < row.size(); i++) {
        line.append(row.get(i));
        if (i < row.size() - 1) {
          line.append(" ".repeat(widths[i] - row.get(i).length() + 2));
        }
      }
      b.append(line.toString().stripTrailing()).append('\n');
    }
    return b.toString();
  }
}
