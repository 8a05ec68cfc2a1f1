package dev.ferry.integration;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The committed guest modules ({@code guests/wasm}, see guests/README.md) and, for the simple ones,
 * their output computed here from the C source, so that a test can check a run against something no
 * Ferry node produced.
 */
final class Guests {
  private Guests() {}

  /** {@code guests/wasm/<name>.wasm}. */
  static Path wasm(String name) {
    Path p = dir().resolve(name + ".wasm");
    if (!Files.isRegularFile(p)) {
      throw new IllegalStateException("no guest module " + p);
    }
    return p;
  }

  private static Path dir() {
    String configured = System.getProperty("ferry.it.guests");
    if (configured != null) {
      return Path.of(configured).toAbsolutePath().normalize();
    }
    return RepoFiles.find("guests/wasm"); // run from an IDE
  }

  /** stdout of {@code lines count stderrEvery [unbuffered]} (guests/src/lines.c). */
  static byte[] linesStdout(long count) {
    StringBuilder b = new StringBuilder((int) Math.min(Integer.MAX_VALUE, count * 45 + 16));
    for (long n = 1; n <= count; n++) {
      long x = n * 0x9E3779B97F4A7C15L;
      x ^= x >>> 31;
      long y = x * 0xBF58476D1CE4E5B9L;
      y ^= y >>> 29;
      b.append(String.format(Locale.ROOT, "line %06d %016x%016x\n", n, x, y));
    }
    b.append("end ").append(count).append('\n');
    return b.toString().getBytes(StandardCharsets.US_ASCII);
  }

  /** stderr of {@code lines count stderrEvery}. */
  static byte[] linesStderr(long count, long stderrEvery) {
    StringBuilder b = new StringBuilder();
    for (long n = stderrEvery; stderrEvery > 0 && n <= count; n += stderrEvery) {
      b.append(String.format(Locale.ROOT, "err %09d\n", n));
    }
    return b.toString().getBytes(StandardCharsets.US_ASCII);
  }

  /** The final {@code /data/a.txt} of {@code files rounds} (guests/src/files.c). */
  static byte[] filesA(int rounds) {
    byte[] a = new byte[32 * rounds];
    for (int r = 0; r < rounds; r++) {
      String rec =
          String.format(Locale.ROOT, "rec %06d %020d\n", r, (r * 2654435761L) & 0xFFFFFFFFL);
      System.arraycopy(rec.getBytes(StandardCharsets.US_ASCII), 0, a, 32 * r, 32);
      int target = (r * 7) % (r + 1);
      a[target * 32 + 10] = (byte) ('a' + r % 26);
    }
    return a;
  }

  /** The final {@code /data/b.bin} of {@code files rounds}. */
  static byte[] filesB(int rounds) {
    byte[] b = new byte[16 * rounds];
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < 16; i++) {
        b[16 * r + i] = (byte) (r * 13 + i * 29);
      }
      b[(r / 2) * 16 + r % 16] = (byte) (0xF0 ^ r);
    }
    return b;
  }

  /** stdout of {@code files rounds} without an {@code /in.txt}. */
  static byte[] filesStdout(int rounds) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int r = 0; r < rounds; r++) {
      int target = (r * 7) % (r + 1);
      String line =
          String.format(
              Locale.ROOT,
              "round %d pos %d %d %d ok\n",
              r,
              32L * (r + 1),
              target * 32L + 10,
              32L * (r + 1));
      out.writeBytes(line.getBytes(StandardCharsets.US_ASCII));
    }
    out.writeBytes("files ok\n".getBytes(StandardCharsets.US_ASCII));
    return out.toByteArray();
  }
}
