package dev.ferry.integration.bench;

import static dev.ferry.integration.bench.BenchOptions.scan;
import static dev.ferry.integration.bench.BenchSupport.awaitMembers;
import static dev.ferry.integration.bench.BenchSupport.awaitRunning;
import static dev.ferry.integration.bench.BenchSupport.integer;
import static dev.ferry.integration.bench.BenchSupport.log;
import static dev.ferry.integration.bench.BenchSupport.ms;
import static dev.ferry.integration.bench.BenchSupport.sleep;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.integration.DaemonProcess;
import dev.ferry.integration.NodeApi;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The live-migration benchmark (docs/BENCHMARKS.md): separate node JVMs on loopback, one {@code
 * datasize} guest per data-area size migrated back and forth with {@code data-segment}, the
 * migration records collected, and a Markdown table of medians and p95s printed and written to a
 * file. Run it with {@code scripts/bench-migration.sh}; it is not a test and never runs in {@code
 * mvn verify}.
 *
 * <pre>
 *   --migrations N     measured migrations per size (default 20)
 *   --warmup N         migrations discarded first, per size (default 3)
 *   --jvm-warmup N     before the first size, N migrations of a 1 MiB process, discarded, so
 *                      that the first size does not pay for the nodes' cold JIT (default 20)
 *   --sizes LIST       data areas in KiB, or with M for MiB (default 50,1M,16M,64M)
 *   --nodes N          node JVMs, 2 or more (default 2); the process goes round-robin
 *   --engine E         every node's engine: compiled (default) or interpreter
 *   --heap SIZE        -Xmx of each node (default 2g; 1g ran out of memory at 64 MiB)
 *   --node-jvm-opt X   one more JVM option for the nodes (repeatable)
 *   --gap-ms MS        pause between migrations, the process running (default 200)
 *   --settle-ms MS     run time before the first migration of a size (default 2000)
 *   --wait-mode M      http: the POST waits ("wait": true, default); poll: POST, then
 *                      GET /v1/migrations/{id} every --poll-ms (default 100)
 *   --java DIR         JDK home of the nodes (default: this JVM's)
 *   --guests DIR       guests/wasm (default: found above the working directory)
 *   --dir DIR          where node data and results go (default integration/target/bench)
 *   --out FILE         the Markdown report (default DIR/migration-TIME.md; a .csv of every
 *                      migration is written next to it)
 *   --pid-file FILE    append each node JVM's pid here (for the script's last-resort cleanup)
 *   --commit TEXT      the source revision, for the report
 *   --command TEXT     the command line, for the report
 * </pre>
 */
public final class MigrationBench {
  /** Iterations of the guest: effectively forever (it is killed after its migrations). */
  static final String ITERATIONS = "2000000000";

  /** How long a 409 (the previous migration not yet settled, say) is retried. */
  static final Duration REFUSAL_RETRY = Duration.ofSeconds(30);

  static final Duration MIGRATION_TIMEOUT = Duration.ofMinutes(5);

  /** Consecutive aborted migrations after which a size is given up. */
  static final int MAX_CONSECUTIVE_FAILURES = 5;

  /** The data area of the process that warms the node JVMs up before the first size. */
  static final long JVM_WARMUP_KIB = 1024;

  /** Extra warm-ups allowed while the image is still smaller than the data area. */
  static final int MAX_EXTRA_WARMUPS = 20;

  private MigrationBench() {}

  /** The benchmark's options (see the class comment). */
  static final class Options extends BenchOptions {
    int migrations = 20;
    int warmup = 3;
    int jvmWarmup = 20;
    List<Long> sizesKib = List.of(50L, 1024L, 16384L, 65536L);
    int nodes = 2;
    long gapMs = 200;
    long settleMs = 2000;
    String waitMode = "http";
    long pollMs = 100;

    Options() {
      super("2g");
    }

    static Options parse(String[] args) {
      return BenchOptions.parse(args, Options::parseOrThrow, Options::usage);
    }

    private static Options parseOrThrow(String[] args) {
      Options o = new Options();
      scan(
          args,
          () -> usage(null),
          (a, v) -> {
            if (o.common(a, v)) {
              return;
            }
            switch (a) {
              case "--migrations" -> o.migrations = integer(a, v, 1);
              case "--warmup" -> o.warmup = integer(a, v, 0);
              case "--jvm-warmup" -> o.jvmWarmup = integer(a, v, 0);
              case "--sizes" -> o.sizesKib = sizes(v);
              case "--nodes" -> o.nodes = integer(a, v, 1);
              case "--gap-ms" -> o.gapMs = integer(a, v, 0);
              case "--settle-ms" -> o.settleMs = integer(a, v, 0);
              case "--wait-mode" -> o.waitMode = v;
              case "--poll-ms" -> o.pollMs = integer(a, v, 1);
              default -> usage("unknown option " + a);
            }
          });
      if (o.nodes < 2) {
        usage("--nodes must be at least 2");
      }
      if (!o.waitMode.equals("http") && !o.waitMode.equals("poll")) {
        usage("--wait-mode must be http or poll");
      }
      return o;
    }

    private static List<Long> sizes(String v) {
      List<Long> out = new ArrayList<>();
      for (String s : v.split(",")) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        if (t.isEmpty()) {
          continue;
        }
        long mult = 1;
        if (t.endsWith("MIB") || t.endsWith("M")) {
          mult = 1024;
          t = t.substring(0, t.length() - (t.endsWith("MIB") ? 3 : 1));
        } else if (t.endsWith("KIB") || t.endsWith("K")) {
          t = t.substring(0, t.length() - (t.endsWith("KIB") ? 3 : 1));
        }
        try {
          long kib = Long.parseLong(t.trim()) * mult;
          if (kib < 1 || kib > 512 * 1024) {
            usage("a size must be between 1 KiB and 512 MiB: " + s);
          }
          out.add(kib);
        } catch (NumberFormatException e) {
          usage("not a size: " + s);
        }
      }
      if (out.isEmpty()) {
        usage("--sizes is empty");
      }
      return List.copyOf(out);
    }

    private static void usage(String problem) {
      if (problem != null) {
        System.err.println("bench-migration: " + problem);
      }
      System.err.println(
          "usage: scripts/bench-migration.sh [--migrations N] [--warmup N] [--jvm-warmup N]\n"
              + "       [--sizes 50,1M,16M,64M]\n"
              + "       [--nodes N] [--engine compiled|interpreter] [--heap 2g] [--node-jvm-opt X]...\n"
              + "       [--gap-ms MS] [--settle-ms MS] [--wait-mode http|poll] [--poll-ms MS]\n"
              + "       [--java JDK_HOME] [--dir DIR] [--out FILE.md]\n"
              + "See docs/BENCHMARKS.md.");
      System.exit(problem == null ? 0 : 2);
    }
  }

  /** What one size produced. */
  record SizeResult(
      long kib,
      List<Sample> all,
      int refusals,
      int lostAnswers,
      String processEnd,
      String loadAtStart) {
    List<Sample> measured() {
      return all.stream().filter(s -> !s.warmUp() && s.committed()).toList();
    }

    List<Sample> failed() {
      return all.stream().filter(s -> !s.committed()).toList();
    }

    long warmUps() {
      return all.stream().filter(Sample::warmUp).count();
    }
  }

  public static void main(String[] args) {
    Options o = Options.parse(args);
    int code;
    try {
      code = run(o);
    } catch (RuntimeException | AssertionError e) {
      System.err.println("bench-migration: failed: " + e);
      e.printStackTrace();
      code = 1;
    }
    System.exit(code);
  }

  static int run(Options o) {
    String stamp = BenchSupport.stamp();
    Path runDir = o.dir.resolve("run-" + stamp).toAbsolutePath();
    Path out =
        (o.out != null ? o.out : o.dir.resolve("migration-" + stamp + ".md")).toAbsolutePath();
    Path csv = out.resolveSibling(out.getFileName().toString().replaceFirst("\\.md$", "") + ".csv");
    Path wasm = BenchSupport.guest(o.guests, "datasize");
    BenchReport.Machine machine = BenchReport.Machine.here();
    Instant started = Instant.now();
    Instant ended;
    List<SizeResult> results = new ArrayList<>();
    Map<String, String> nodeJdks = new LinkedHashMap<>();
    List<String> nodeFlags;
    boolean complete = false;
    log("node data and logs under " + runDir);
    BenchCluster cluster = new BenchCluster(runDir, o.pidFile);
    try {
      List<DaemonProcess> nodes =
          cluster.start(o.nodes, o.engine, o.java, o.heap, o.nodeJvmOptions);
      nodeFlags = nodes.get(0).jvmFlags();
      awaitMembers(nodes.get(0).api(), o.nodes);
      for (JsonNode n : nodes.get(0).api().nodes()) {
        nodeJdks.put(n.path("name").asText(), n.path("jdk").asText());
      }
      log("cluster up: " + nodes + ", JDKs " + nodeJdks);
      String hash = nodes.get(0).api().upload(wasm);
      if (o.jvmWarmup > 0) {
        log(
            "warming up the node JVMs: "
                + o.jvmWarmup
                + " migrations of a "
                + label(JVM_WARMUP_KIB)
                + " process, not counted");
        runSize(o, cluster, hash, JVM_WARMUP_KIB, o.jvmWarmup, 0);
      }
      for (long kib : o.sizesKib) {
        results.add(runSize(o, cluster, hash, kib, o.warmup, o.migrations));
      }
      ended = Instant.now();
      machine = machine.withLoadAtEnd(); // before the nodes stop
      complete = true;
    } finally {
      cluster.close();
      if (!complete && !results.isEmpty()) {
        log("incomplete run; what was measured so far:");
        System.out.println(
            BenchReport.render(o, machine, List.of(), started, Instant.now(), results, nodeJdks));
      }
    }
    String report = BenchReport.render(o, machine, nodeFlags, started, ended, results, nodeJdks);
    System.out.println();
    System.out.println(report);
    try {
      Files.createDirectories(out.getParent());
      Files.writeString(out, report, StandardCharsets.UTF_8);
      List<String> lines = new ArrayList<>();
      lines.add(Sample.csvHeader());
      results.forEach(r -> r.all().forEach(s -> lines.add(s.csv())));
      Files.write(csv, lines, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    log("report written to " + out + " (every migration: " + csv + ")");
    boolean allOk = results.stream().allMatch(r -> r.measured().size() >= o.migrations);
    return allOk ? 0 : 3;
  }

  /** One process of {@code kib} KiB, migrated round-robin: warm-ups, then the measured ones. */
  static SizeResult runSize(
      Options o, BenchCluster cluster, String hash, long kib, int warmup, int migrations) {
    List<DaemonProcess> nodes = cluster.nodes();
    String load = BenchReport.Machine.loadAverage();
    NodeApi first = nodes.get(0).api();
    String pid = first.run(hash, List.of(Long.toString(kib), ITERATIONS));
    awaitRunning(first, pid);
    log(
        String.format(
            "%s: process %s (datasize %d KiB) runs on %s",
            label(kib), pid, kib, nodes.get(0).name()));
    sleep(o.settleMs);
    List<Sample> all = new ArrayList<>();
    int refusals = 0;
    int lostAnswers = 0;
    int at = 0;
    int warmUps = 0;
    int measured = 0;
    int consecutiveFailures = 0;
    int seq = 0;
    while (measured < migrations || warmUps < warmup) {
      if (cluster.stopping()) {
        throw new IllegalStateException("the nodes are being stopped");
      }
      DaemonProcess from = nodes.get(at);
      DaemonProcess to = nodes.get((at + 1) % nodes.size());
      int[] refused = {0};
      Instant[] sent = {null};
      JsonNode record = migrate(o, from.api(), pid, to.name(), refused, sent);
      Instant answered = Instant.now();
      long roundTrip = Duration.between(sent[0], answered).toNanos() / 1000;
      refusals += refused[0];
      seq++;
      if (record == null) {
        lostAnswers++;
        log(
            String.format(
                "%s #%d %s->%s: answered 409, but the process is on %s already: its record is not counted",
                label(kib), seq, from.name(), to.name(), to.name()));
        at = (at + 1) % nodes.size();
        sleep(o.gapMs);
        continue;
      }
      boolean committed = record.path("state").asText().equals("committed");
      long imageBytes = record.path("imageBytes").asLong();
      boolean warm =
          warmUps < warmup
              || (committed && imageBytes < kib * 1024 && warmUps < warmup + MAX_EXTRA_WARMUPS);
      Sample s = Sample.of(kib, seq, warm, record, sent[0], answered, roundTrip);
      all.add(s);
      if (committed) {
        at = (at + 1) % nodes.size();
        consecutiveFailures = 0;
        if (warm) {
          warmUps++;
        } else {
          measured++;
        }
      } else {
        consecutiveFailures++;
        if (warm) {
          warmUps++;
        }
      }
      String stateNow = committed ? "running" : from.api().status(pid).path("state").asText();
      log(
          String.format(
              Locale.ROOT,
              "%s #%d%s %s->%s %s: freeze %s ms (still after %s, capture %s, transfer %s, restore %s), total %s ms, image %d B, moved %d B%s",
              label(kib),
              seq,
              warm ? " (warm-up)" : "",
              s.fromNode(),
              s.toNode(),
              s.state(),
              ms(s.totalFreezeMicros()),
              ms(s.freezeMicros()),
              ms(s.captureMicros()),
              ms(s.transferMicros()),
              ms(s.restoreMicros()),
              ms(s.totalMicros()),
              s.imageBytes(),
              s.bytesMoved(),
              s.error().isEmpty() ? "" : " error: " + s.error()));
      if (!stateNow.equalsIgnoreCase("running")) {
        log(
            label(kib)
                + ": the process is "
                + stateNow
                + " after an aborted migration; giving up this size");
        break;
      }
      if (consecutiveFailures >= MAX_CONSECUTIVE_FAILURES) {
        log(
            label(kib)
                + ": "
                + consecutiveFailures
                + " migrations in a row failed; giving up this size");
        break;
      }
      sleep(o.gapMs);
    }
    // The process must still be running (not failed) wherever it is now; then it is stopped.
    String end;
    NodeApi here = nodes.get(at).api();
    JsonNode st = here.status(pid);
    String state = st.path("state").asText();
    if (state.equalsIgnoreCase("running")) {
      here.kill(pid);
      end = "running on " + st.path("node").asText() + " after its migrations (then killed)";
    } else {
      end = state + (st.path("error").isTextual() ? ": " + st.path("error").asText() : "");
      log(label(kib) + ": the process is " + end + " after its migrations");
    }
    return new SizeResult(kib, List.copyOf(all), refusals, lostAnswers, end, load);
  }

  /**
   * One migration; returns its final record, or null if the answer was a 409 although the process
   * is at {@code to} already (the migration happened, its answer was lost). Another 409 (the
   * process still settling after the last migration) is retried for up to {@link #REFUSAL_RETRY},
   * counted in {@code refused[0]}; {@code sent[0]} is when the request that was answered was sent.
   */
  static JsonNode migrate(
      Options o, NodeApi api, String pid, String to, int[] refused, Instant[] sent) {
    long deadline = System.nanoTime() + REFUSAL_RETRY.toNanos();
    while (true) {
      NodeApi.Answer a;
      sent[0] = Instant.now();
      if (o.waitMode.equals("http")) {
        a = api.requestMigration(pid, to, MIGRATION_TIMEOUT);
      } else {
        a = api.requestMigration(pid, to, null, false);
      }
      if (a.status() == 409) {
        // "Already runs on node <to>": the migration asked for happened, but its answer was lost
        // (seen after long JVM pauses). The caller goes on from there; it is reported.
        if (api.status(pid).path("node").asText().equals(to)) {
          return null;
        }
        if (System.nanoTime() < deadline) {
          refused[0]++;
          sleep(20);
          continue;
        }
      }
      JsonNode m = a.expect(200, 202).json();
      return BenchSupport.awaitEnded(
          api, m, o.waitMode.equals("poll") ? o.pollMs : 20, MIGRATION_TIMEOUT);
    }
  }

  static String label(long kib) {
    return kib % 1024 == 0 ? (kib / 1024) + " MiB" : kib + " KiB";
  }
}
