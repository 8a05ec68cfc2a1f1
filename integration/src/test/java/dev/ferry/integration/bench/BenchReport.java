package dev.ferry.integration.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The benchmark's Markdown report: the machine, the method, the tables, the targets. */
final class BenchReport {
  /** The 50 KB target: median total migration time under this. */
  static final double SMALL_TARGET_MS = 5.0;

  /** The large-image target: transfer at least this fast, MB/s (10^6 B/s), on loopback. */
  static final double THROUGHPUT_TARGET_MBPS = 500.0;

  /** From this data area on a size counts as a large image for the throughput target. */
  static final long LARGE_KIB = 16 * 1024;

  /**
   * After this many migrations between two fresh nodes a 50 KiB migration takes its steady-state
   * time (docs/BENCHMARKS.md, "a node's first 400 migrations"); before, the nodes' JIT is still
   * compiling the code a migration runs.
   */
  static final long STEADY_AFTER = 300;

  private BenchReport() {}

  /** What the report says about the machine. */
  record Machine(
      String cpu,
      int cpus,
      long memKib,
      String os,
      String benchJdk,
      String loadStart,
      String loadEnd) {
    static Machine here() {
      return new Machine(
          cpuModel(),
          Runtime.getRuntime().availableProcessors(),
          memTotalKib(),
          System.getProperty("os.name")
              + " "
              + System.getProperty("os.version")
              + " "
              + System.getProperty("os.arch"),
          System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"),
          loadAverage(),
          "");
    }

    Machine withLoadAtEnd() {
      return new Machine(cpu, cpus, memKib, os, benchJdk, loadStart, loadAverage());
    }

    private static String cpuModel() {
      try {
        for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"), StandardCharsets.UTF_8)) {
          if (l.startsWith("model name")) {
            return l.substring(l.indexOf(':') + 1).trim();
          }
        }
      } catch (IOException e) {
        // not Linux
      }
      return System.getProperty("os.arch");
    }

    private static long memTotalKib() {
      try {
        for (String l : Files.readAllLines(Path.of("/proc/meminfo"), StandardCharsets.UTF_8)) {
          if (l.startsWith("MemTotal:")) {
            return Long.parseLong(l.replaceAll("[^0-9]", ""));
          }
        }
      } catch (IOException | NumberFormatException e) {
        // not Linux
      }
      return -1;
    }

    static String loadAverage() {
      try {
        String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
        return f[0] + " " + f[1] + " " + f[2];
      } catch (IOException | RuntimeException e) {
        return "?";
      }
    }
  }

  static String render(
      MigrationBench.Options o,
      Machine m,
      List<String> nodeFlags,
      Instant started,
      Instant ended,
      List<MigrationBench.SizeResult> results,
      Map<String, String> nodeJdks) {
    StringBuilder b = new StringBuilder();
    b.append("### Live migration, data-segment, ")
        .append(o.nodes)
        .append(" node JVMs on loopback (")
        .append(started.toString(), 0, 16)
        .append("Z)\n\n");
    setup(b, m, o.nodes, o.engine, nodeJdks, nodeFlags, o.commit, o.command);
    b.append("- Method: ")
        .append(
            o.jvmWarmup > 0
                ? "first the node JVMs are warmed up with "
                    + o.jvmWarmup
                    + " migrations of a 1 MiB `datasize` process (not counted); then "
                : "")
        .append("one `datasize <KiB> ")
        .append(MigrationBench.ITERATIONS)
        .append("` guest per size, started on n1, left running ")
        .append(o.settleMs)
        .append(" ms, then migrated round-robin (n1 → n2")
        .append(o.nodes > 2 ? " → … → n" + o.nodes : "")
        .append(" → n1 …) with `POST /v1/processes/{pid}/migrations` ")
        .append(
            o.waitMode.equals("http")
                ? "`{\"to\": …, \"wait\": true}`"
                : "(then `GET /v1/migrations/{id}` every " + o.pollMs + " ms)")
        .append(", ")
        .append(o.gapMs)
        .append(" ms apart; the first ")
        .append(o.warmup)
        .append(
            " migrations of each size are warm-ups and discarded (more if the image was not yet as large as the data area), then ")
        .append(o.migrations)
        .append(" are measured. Wall time ")
        .append(human(Duration.between(started, ended)))
        .append(".\n\n");

    b.append(
        "| data area | image | moved | n | freeze median | freeze p95 | total median | total p95 | until still | capture | transfer | (stream | store) | restore | other | transfer MB/s |\n");
    b.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (MigrationBench.SizeResult r : results) {
      List<Sample> s = r.measured();
      b.append(
          row(
              MigrationBench.label(r.kib()),
              bytes(Stats.median(s, Sample::imageBytes)),
              bytes(Stats.median(s, Sample::bytesMoved)),
              String.valueOf(s.size()),
              msCell(Stats.median(s, Sample::totalFreezeMicros)),
              msCell(Stats.p95(s, Sample::totalFreezeMicros)),
              msCell(Stats.median(s, Sample::totalMicros)),
              msCell(Stats.p95(s, Sample::totalMicros)),
              msCell(Stats.median(s, Sample::freezeMicros)),
              msCell(Stats.median(s, Sample::captureMicros)),
              msCell(Stats.median(s, Sample::transferMicros)),
              msCell(Stats.median(s, Sample::streamMicros)),
              msCell(Stats.median(s, Sample::storeMicros)),
              msCell(Stats.median(s, Sample::restoreMicros)),
              msCell(Stats.median(s, Sample::otherMicros)),
              num(Stats.median(s, Sample::transferMBps), 0)));
    }
    b.append(
            "\nTimes in ms. *freeze* = `totalFreezeMicros` (from the freeze request until the process runs")
        .append(
            " at the destination); *total* = `totalMicros`; *until still* (`freezeMicros`), *capture*,")
        .append(
            " *transfer*, *restore* are the phase medians; *(stream | store)* split the transfer as")
        .append(
            " the destination measured it (`streamMicros`: first to last chunk received; `storeMicros`:")
        .append(
            " from the last chunk until the bundle is parsed and stored durably with an fsync), the")
        .append(" rest of the transfer being the source's side (module check, building and")
        .append(" serializing the bundle) and the connection; *restore* is the destination's own")
        .append(" time to restore the process that its store did not hide (it is rebuilt while the")
        .append(" store syncs; images of 4 MiB and more are copied into the store as they arrive,")
        .append(
            " larger ones than 32 MiB that were not are rebuilt after it; the destination answers the")
        .append(" last chunk when both are done, then lets the process run: not in *transfer*);")
        .append(" *other* = total − the four phases (prepare, record updates, the commit that")
        .append(
            " discards the source's copy); *transfer MB/s* = median of `bytesMoved` / `transferMicros`")
        .append(
            " (10^6 B/s). *image* and *moved* are medians in bytes (MiB = 2^20). p95 is nearest-rank")
        .append(" (the 19th of 20, the 38th of 40).\n\n");

    b.append(
        "| data area | freeze min | freeze max | total min | total max | HTTP round trip median | POST → requestedAt | finishedAt → answer | warm-ups | aborted | 409 retries | 409 though moved | load avg at start | process afterwards |\n");
    b.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (MigrationBench.SizeResult r : results) {
      List<Sample> s = r.measured();
      b.append(
          row(
              MigrationBench.label(r.kib()),
              msCell(Stats.min(s, Sample::totalFreezeMicros)),
              msCell(Stats.max(s, Sample::totalFreezeMicros)),
              msCell(Stats.min(s, Sample::totalMicros)),
              msCell(Stats.max(s, Sample::totalMicros)),
              msCell(Stats.median(s, Sample::roundTripMicros)),
              msCell(Stats.median(s, Sample::startDelayMicros)),
              msCell(Stats.median(s, Sample::answerDelayMicros)),
              String.valueOf(r.warmUps()),
              String.valueOf(r.failed().size()),
              String.valueOf(r.refusals()),
              String.valueOf(r.lostAnswers()),
              String.valueOf(r.loadAtStart()),
              String.valueOf(r.processEnd())));
    }
    b.append(
            "\nSpread of the measured migrations, and the view from the client: *HTTP round trip* is")
        .append(" from sending the POST to having the final record; *POST → requestedAt* and")
        .append(" *finishedAt → answer* split off the part outside the record's own `totalMicros`")
        .append(" (wall clocks of the same machine, ms). *409 retries*: requests refused while the")
        .append(
            " process was still settling, sent again; *409 though moved*: a request answered 409")
        .append(
            " \"already runs on\" its destination, i.e. it moved but the answer was lost (not counted).\n");
    for (MigrationBench.SizeResult r : results) {
      for (Sample f : r.failed()) {
        b.append("\n- ")
            .append(MigrationBench.label(r.kib()))
            .append(" #")
            .append(f.seq())
            .append(" ")
            .append(f.state())
            .append(": ")
            .append(f.error());
      }
    }
    b.append("\n\nTargets (checked as measured, not tuned):\n\n");
    // Migrations the nodes had made before a size's measured ones: a node's first few hundred run
    // code its JIT has not compiled yet, so the verdict says which case it is.
    long before = o.jvmWarmup;
    for (MigrationBench.SizeResult r : results) {
      List<Sample> s = r.measured();
      long earlier = before + r.warmUps();
      before += r.all().size();
      if (s.isEmpty()) {
        continue;
      }
      if (r.kib() <= 64) {
        double total = Stats.median(s, Sample::totalMicros) / 1000.0;
        b.append("- ")
            .append(MigrationBench.label(r.kib()))
            .append(": median total ")
            .append(num(total, 2))
            .append(" ms against < ")
            .append(num(SMALL_TARGET_MS, 0))
            .append(" ms: **")
            .append(total < SMALL_TARGET_MS ? "met" : "not met")
            .append("**, measured after ")
            .append(earlier)
            .append(" other migrations between these nodes (")
            .append(
                earlier < STEADY_AFTER
                    ? "a node's first ones: its JIT still compiles the migration path"
                    : "steady state")
            .append("; docs/BENCHMARKS.md, \"a node's first 400 migrations\").\n");
      }
      if (r.kib() >= LARGE_KIB) {
        double mbps = Stats.median(s, Sample::transferMBps);
        b.append("- ")
            .append(MigrationBench.label(r.kib()))
            .append(": median transfer ")
            .append(num(mbps, 0))
            .append(" MB/s against ≥ ")
            .append(num(THROUGHPUT_TARGET_MBPS, 0))
            .append(" MB/s: **")
            .append(mbps >= THROUGHPUT_TARGET_MBPS ? "met" : "not met")
            .append("**; end to end (bytes moved / total) ")
            .append(
                num(
                    Stats.median(
                        s,
                        x -> x.totalMicros() == 0 ? 0 : (double) x.bytesMoved() / x.totalMicros()),
                    0))
            .append(" MB/s.\n");
      }
    }
    return b.toString();
  }

  /** The report's lines on the machine, the nodes, the source and the command. */
  static void setup(
      StringBuilder b,
      Machine m,
      int nodes,
      String engine,
      Map<String, String> nodeJdks,
      List<String> nodeFlags,
      String commit,
      String command) {
    b.append("- Machine: ")
        .append(m.cpu())
        .append(", ")
        .append(m.cpus())
        .append(" CPUs, ")
        .append(String.format(Locale.ROOT, "%.1f GiB", m.memKib() / 1024.0 / 1024.0))
        .append(" RAM, ")
        .append(m.os())
        .append("; load average (1/5/15 min) ")
        .append(m.loadStart())
        .append(" at the start")
        .append(m.loadEnd().isEmpty() ? "" : ", " + m.loadEnd() + " at the end")
        .append(".\n");
    b.append("- Nodes: ")
        .append(nodes)
        .append(" `ferry daemon` JVMs, engine `")
        .append(engine)
        .append("` on all, JDK ")
        .append(nodeJdks.values().stream().distinct().reduce((x, y) -> x + ", " + y).orElse("?"))
        .append(nodeFlags.isEmpty() ? "" : ", JVM flags `" + String.join(" ", nodeFlags) + "`")
        .append("; benchmark driver on ")
        .append(m.benchJdk())
        .append(".\n");
    if (!commit.isEmpty()) {
      b.append("- Source: ").append(commit).append(".\n");
    }
    if (!command.isEmpty()) {
      b.append("- Command: `").append(command).append("`.\n");
    }
  }

  /** A Markdown table row of {@code cells}. */
  static String row(String... cells) {
    return "| " + String.join(" | ", cells) + " |\n";
  }

  static String msCell(double micros) {
    return Double.isNaN(micros) ? "–" : String.format(Locale.ROOT, "%.2f", micros / 1000.0);
  }

  static String num(double v, int decimals) {
    return Double.isNaN(v) ? "–" : String.format(Locale.ROOT, "%." + decimals + "f", v);
  }

  static String bytes(double b) {
    if (Double.isNaN(b)) {
      return "–";
    }
    if (b >= 1024 * 1024) {
      return String.format(Locale.ROOT, "%.2f MiB", b / 1024 / 1024);
    }
    return String.format(Locale.ROOT, "%.1f KiB", b / 1024);
  }

  static String human(Duration d) {
    long s = d.toSeconds();
    return s >= 60 ? (s / 60) + " min " + (s % 60) + " s" : s + " s";
  }
}
