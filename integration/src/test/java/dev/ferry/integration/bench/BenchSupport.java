package dev.ferry.integration.bench;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.integration.NodeApi;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What the benchmarks share: waiting for the cluster, a process and a migration record, finding the
 * guest modules, progress lines, and parsing options.
 */
final class BenchSupport {
  private BenchSupport() {}

  /** A bad command line: the message says what, the benchmark prints its usage. */
  static final class UsageError extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    UsageError(String message) {
      super(message);
    }
  }

  /** Polls the record of migration {@code m} every {@code pollMs} until it has ended. */
  static JsonNode awaitEnded(NodeApi api, JsonNode m, long pollMs, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!isEnded(m)) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("migration did not end within " + timeout + ": " + m);
      }
      sleep(pollMs);
      m = api.migration(m.path("id").asText());
    }
    return m;
  }

  /** Committed, aborted or cancelled, and its node has filled in finishedAt. */
  static boolean isEnded(JsonNode m) {
    String s = m.path("state").asText();
    boolean ended = s.equals("committed") || s.equals("aborted") || s.equals("cancelled");
    return ended && m.hasNonNull("finishedAt");
  }

  static void awaitRunning(NodeApi api, String pid) {
    long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
    while (true) {
      JsonNode s = api.status(pid);
      String state = s.path("state").asText();
      if (state.equalsIgnoreCase("running")) {
        return;
      }
      if (!state.equalsIgnoreCase("starting") && !state.equalsIgnoreCase("pending")
          || System.nanoTime() > deadline) {
        throw new IllegalStateException("process " + pid + " did not start: " + s);
      }
      sleep(50);
    }
  }

  /** Until {@code api} lists {@code n} members up, each with its engine known. */
  static void awaitMembers(NodeApi api, int n) {
    long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
    while (true) {
      List<JsonNode> ns = api.nodes();
      int up = 0;
      for (JsonNode x : ns) {
        if (x.path("status").asText().equals("up") && x.hasNonNull("engine")) {
          up++;
        }
      }
      if (up >= n) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the cluster did not show " + n + " up members: " + ns);
      }
      sleep(200);
    }
  }

  /** {@code dir} if given, else the first {@code guests/wasm} above the working directory. */
  static Path guests(Path dir) {
    if (dir != null) {
      return dir.toAbsolutePath();
    }
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.isDirectory(d.resolve("guests/wasm"))) {
        return d.resolve("guests/wasm");
      }
    }
    throw new IllegalStateException(
        "cannot find guests/wasm above " + Path.of("").toAbsolutePath());
  }

  /** A guest module, which must exist. */
  static Path guest(Path dir, String name) {
    Path wasm = guests(dir).resolve(name + ".wasm");
    if (!Files.isRegularFile(wasm)) {
      throw new IllegalStateException("no guest module " + wasm);
    }
    return wasm;
  }

  static String ms(long micros) {
    return String.format(Locale.ROOT, "%.2f", micros / 1000.0);
  }

  /** A progress line on stderr. */
  static void log(String line) {
    System.err.println(
        "[bench "
            + LocalDateTime.now().format(DateTimeFormatter.ofPattern("HH:mm:ss"))
            + "] "
            + line);
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  static String stamp() {
    return LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
  }

  // ------------------------------------------------------------------ options

  /** The value after option {@code args[i]}, or a UsageError. */
  static String value(String[] args, int i) {
    if (i + 1 >= args.length) {
      throw new UsageError("missing value after " + args[i]);
    }
    return args[i + 1];
  }

  /** A whole number of at least {@code min}. */
  static int integer(String opt, String v, int min) {
    try {
      int n = Integer.parseInt(v.trim());
      if (n < min) {
        throw new UsageError(opt + " must be at least " + min + ", got " + v);
      }
      return n;
    } catch (NumberFormatException e) {
      throw new UsageError(opt + " needs a number, got " + v);
    }
  }

  /** A comma-separated list of whole numbers, each from {@code min} to {@code max}. */
  static List<Integer> integers(String opt, String v, int min, int max) {
    List<Integer> out = new ArrayList<>();
    for (String s : v.split(",")) {
      if (s.isBlank()) {
        continue;
      }
      int n = integer(opt, s, min);
      if (n > max) {
        throw new UsageError(opt + ": at most " + max + ", got " + s.trim());
      }
      out.add(n);
    }
    if (out.isEmpty()) {
      throw new UsageError(opt + " is empty");
    }
    return List.copyOf(out);
  }

  /** A comma-separated list of names. */
  static List<String> names(String opt, String v) {
    List<String> out = new ArrayList<>();
    for (String s : v.split(",")) {
      if (!s.isBlank() && !out.contains(s.trim())) {
        out.add(s.trim());
      }
    }
    if (out.isEmpty()) {
      throw new UsageError(opt + " is empty");
    }
    return List.copyOf(out);
  }
}
