package dev.ferry.integration.bench;

import static dev.ferry.integration.bench.BenchOptions.scan;
import static dev.ferry.integration.bench.BenchSupport.awaitEnded;
import static dev.ferry.integration.bench.BenchSupport.awaitMembers;
import static dev.ferry.integration.bench.BenchSupport.awaitRunning;
import static dev.ferry.integration.bench.BenchSupport.integer;
import static dev.ferry.integration.bench.BenchSupport.integers;
import static dev.ferry.integration.bench.BenchSupport.log;
import static dev.ferry.integration.bench.BenchSupport.ms;
import static dev.ferry.integration.bench.BenchSupport.names;
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
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The paging benchmark (docs/BENCHMARKS.md, "Paging strategies"): three separate node JVMs on
 * loopback; for every address-space size × dirty fraction × strategy, repeated runs of one fresh
 * paged {@code dirty} process each (guests/README.md): started on n1, left until its area is filled
 * and the background flusher has written its cold pages out to the paging file and its replica,
 * then migrated once with the strategy, its migration record and the guest's own report of the
 * steps around its resume collected, and killed. Medians per cell and strategy, ratios against
 * {@code data-segment} (a full copy of memory) measured in the same run, a Markdown table printed
 * and written to a file, every run in a CSV next to it. Run it with {@code
 * scripts/bench-paging.sh}; it is not a test and never runs in {@code mvn verify}.
 *
 * <p>A strategy the nodes refuse as unknown (HTTP 400 "unknown strategy") is reported as not
 * offered and not tried again; the others go on.
 *
 * <pre>
 *   --sizes LIST          address spaces in MiB (default 16,64,256)
 *   --dirty LIST          hot pages in % of the area (default 1,10,50)
 *   --strategies LIST     default data-segment,gfvm,pre-copy,post-copy,flushing; data-segment
 *                         is the full-copy baseline of the ratios
 *   --runs N              measured runs per cell, every strategy once per run (default 5)
 *   --jit-warmup S        first, the guest runs S seconds on every node at once (default 15),
 *                         so that every node's JIT has compiled its loop before it is timed
 *                         there after a resume
 *   --warmup N            then rounds of every strategy at every size (the fewest dirty),
 *                         not counted (default 1); the measured runs go round the cells, run r
 *                         of every cell before run r + 1 of any
 *   --node-setting K=V    a setting for every node, e.g. ferry.strategies.gfvm.quiet-time=500ms
 *                         (repeatable; written to each node's --config file as K = V)
 *   --heap SIZE           -Xmx of each node (default 4g)
 *   --node-jvm-opt X      one more JVM option for the nodes (repeatable)
 *   --engine E            compiled (default) or interpreter
 *   --window N            steps the guest times before and after its resume (default 50)
 *   --gap-ms MS           pause after each run (default 500)
 *   --settle-timeout S    seconds a process may take to be filled and written out (default 300)
 *   --java DIR, --guests DIR, --dir DIR, --out FILE, --pid-file FILE, --commit TEXT,
 *   --command TEXT        as for MigrationBench
 * </pre>
 */
public final class PagingBench {
  /** Every strategy the issue asks for, in the report's order. */
  static final List<String> ALL_STRATEGIES =
      List.of("data-segment", "gfvm", "pre-copy", "post-copy", "flushing");

  /** The full copy the ratios compare with. */
  static final String FULL_COPY = "data-segment";

  /** Steps of the guest: effectively forever (it is killed after its migration). */
  static final String STEPS = "2000000000";

  /** Nodes: n1 runs the processes, n2 receives them, n3 holds replicas (or flushing's files). */
  static final int NODES = 3;

  static final Duration MIGRATION_TIMEOUT = Duration.ofMinutes(5);
  static final Duration FILL_TIMEOUT = Duration.ofMinutes(5);
  static final Duration RESUME_TIMEOUT = Duration.ofMinutes(2);

  /** Dirty pages beyond the hot set that still count as settled: stack, libc's data. */
  static final long DIRTY_SLACK = 64;

  static final Pattern FILLED = Pattern.compile("filled (\\d+) pages, (\\d+) hot");

  private PagingBench() {}

  /** The benchmark's options (see the class comment). */
  static final class Options extends BenchOptions {
    List<Integer> sizesMib = List.of(16, 64, 256);
    List<Integer> dirtyPercents = List.of(1, 10, 50);
    List<String> strategies = ALL_STRATEGIES;
    int runs = 5;
    int warmup = 1;
    int jitWarmupSeconds = 15;
    List<String> nodeSettings = new ArrayList<>();
    int window = 50;
    long gapMs = 500;
    int settleTimeoutSeconds = 300;

    Options() {
      super("4g");
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
              case "--sizes" -> o.sizesMib = integers(a, v, 1, 1024);
              case "--dirty" -> o.dirtyPercents = integers(a, v, 0, 100);
              case "--strategies" -> o.strategies = names(a, v);
              case "--runs" -> o.runs = integer(a, v, 1);
              case "--warmup" -> o.warmup = integer(a, v, 0);
              case "--jit-warmup" -> o.jitWarmupSeconds = integer(a, v, 0);
              case "--node-setting" -> o.nodeSettings.add(setting(v));
              case "--window" -> o.window = integer(a, v, 2);
              case "--gap-ms" -> o.gapMs = integer(a, v, 0);
              case "--settle-timeout" -> o.settleTimeoutSeconds = integer(a, v, 1);
              default -> throw new BenchSupport.UsageError("unknown option " + a);
            }
          });
      if (o.window > 1000) {
        throw new BenchSupport.UsageError("--window: at most 1000");
      }
      return o;
    }

    private static String setting(String v) {
      int eq = v.indexOf('=');
      if (eq <= 0) {
        throw new BenchSupport.UsageError("--node-setting needs KEY=VALUE, got " + v);
      }
      return v.substring(0, eq).trim() + " = " + v.substring(eq + 1).trim();
    }

    /** The nodes' --config file: the --node-setting lines, or null for none. */
    String nodeConfig() {
      return nodeSettings.isEmpty() ? null : String.join("\n", nodeSettings);
    }

    private static void usage(String problem) {
      if (problem != null) {
        System.err.println("bench-paging: " + problem);
      }
      System.err.println(
          "usage: scripts/bench-paging.sh [--sizes 16,64,256] [--dirty 1,10,50]\n"
              + "       [--strategies data-segment,gfvm,pre-copy,post-copy,flushing]\n"
              + "       [--runs N] [--warmup N] [--jit-warmup S] [--node-setting KEY=VALUE]...\n"
              + "       [--heap 4g] [--node-jvm-opt X]... [--engine compiled|interpreter]\n"
              + "       [--window N] [--gap-ms MS] [--settle-timeout S]\n"
              + "       [--java JDK_HOME] [--dir DIR] [--out FILE.md]\n"
              + "See docs/BENCHMARKS.md.");
      System.exit(problem == null ? 0 : 2);
    }
  }

  /** What the whole benchmark produced. */
  record Results(List<PagingSample> samples, Map<String, String> notOffered) {}

  public static void main(String[] args) {
    Options o = Options.parse(args);
    int code;
    try {
      code = run(o);
    } catch (RuntimeException | AssertionError e) {
      System.err.println("bench-paging: failed: " + e);
      e.printStackTrace();
      code = 1;
    }
    System.exit(code);
  }

  static int run(Options o) {
    String stamp = BenchSupport.stamp();
    Path runDir = o.dir.resolve("run-" + stamp).toAbsolutePath();
    Path out = (o.out != null ? o.out : o.dir.resolve("paging-" + stamp + ".md")).toAbsolutePath();
    Path csv = out.resolveSibling(out.getFileName().toString().replaceFirst("\\.md$", "") + ".csv");
    Path wasm = BenchSupport.guest(o.guests, "dirty");
    BenchReport.Machine machine = BenchReport.Machine.here();
    Instant started = Instant.now();
    Results results = new Results(new ArrayList<>(), new LinkedHashMap<>());
    Map<String, String> nodeJdks = new LinkedHashMap<>();
    List<String> nodeFlags = List.of();
    boolean complete = false;
    log("node data and logs under " + runDir);
    BenchCluster cluster = new BenchCluster(runDir, o.pidFile);
    try {
      List<DaemonProcess> nodes =
          cluster.start(NODES, o.engine, o.java, o.heap, o.nodeJvmOptions, o.nodeConfig());
      nodeFlags = nodes.get(0).jvmFlags();
      awaitMembers(nodes.get(0).api(), NODES);
      for (JsonNode n : nodes.get(0).api().nodes()) {
        nodeJdks.put(n.path("name").asText(), n.path("jdk").asText());
      }
      log("cluster up: " + nodes + ", JDKs " + nodeJdks);
      // On every node, so that each can run the guest for the JIT warm-up (and no migration
      // carries the module).
      String hash = nodes.get(0).api().upload(wasm);
      for (DaemonProcess n : nodes) {
        n.api().upload(wasm);
      }
      Bench b = new Bench(o, cluster, hash, results);
      b.warmJit();
      // Warm-ups at every size: the first migrations of a size are slower (the nodes' stores
      // grow to hold that size, their JVMs meet larger allocations); measured, that would favour
      // whichever cell comes later.
      int fewest = o.dirtyPercents.stream().min(Integer::compare).orElseThrow();
      for (int w = 0; w < o.warmup; w++) {
        for (int mib : o.sizesMib) {
          log("warm-up round " + (w + 1) + " of " + o.warmup + " at " + mib + " MiB (not counted)");
          b.round(mib, fewest, -w, true);
        }
      }
      // Run r of every cell before run r + 1 of any, so that drift (the stores, the machine's
      // load) spreads over all cells alike.
      for (int r = 1; r <= o.runs; r++) {
        for (int mib : o.sizesMib) {
          for (int pct : o.dirtyPercents) {
            b.round(mib, pct, r, false);
          }
        }
      }
      machine = machine.withLoadAtEnd(); // before the nodes stop
      complete = true;
    } finally {
      cluster.close();
      if (!complete && !results.samples().isEmpty()) {
        log("incomplete run; what was measured so far:");
        String partial =
            PagingReport.render(
                o, machine, nodeFlags, nodeJdks, started, Instant.now(), results, false);
        System.out.println(partial);
        write(out, csv, partial, results);
        log("incomplete report written to " + out);
      }
    }
    String report =
        PagingReport.render(o, machine, nodeFlags, nodeJdks, started, Instant.now(), results, true);
    System.out.println();
    System.out.println(report);
    write(out, csv, report, results);
    log("report written to " + out + " (every run: " + csv + ")");
    long failed = results.samples().stream().filter(s -> !s.failure().isEmpty()).count();
    return failed == 0 ? 0 : 3;
  }

  /** The report, and every run in the CSV. */
  static void write(Path out, Path csv, String report, Results results) {
    try {
      Files.createDirectories(out.getParent());
      Files.writeString(out, report, StandardCharsets.UTF_8);
      List<String> lines = new ArrayList<>();
      lines.add(PagingSample.csvHeader());
      results.samples().forEach(s -> lines.add(s.csv()));
      Files.write(csv, lines, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Refused as unknown by the nodes: not offered. */
  static final class NotOffered extends Exception {
    private static final long serialVersionUID = 1L;

    NotOffered(String message) {
      super(message);
    }
  }

  /** The running benchmark: the cluster, the uploaded module, what has been measured. */
  static final class Bench {
    final Options o;
    final BenchCluster cluster;
    final String hash;
    final Results results;
    final Map<String, NodeApi> apis = new LinkedHashMap<>();

    Bench(Options o, BenchCluster cluster, String hash, Results results) {
      this.o = o;
      this.cluster = cluster;
      this.hash = hash;
      this.results = results;
      for (DaemonProcess n : cluster.nodes()) {
        apis.put(n.name(), n.api());
      }
    }

    NodeApi source() {
      return apis.get("n1");
    }

    /**
     * Runs the guest (16 MiB, 10 % hot, paged, timed) on every node at once for {@code
     * --jit-warmup} seconds, then kills it: a node that has only ever run the guest's loop for the
     * few steps after a resume would time them in the JVM's interpreter, which is no paging cost.
     */
    void warmJit() {
      if (o.jitWarmupSeconds == 0) {
        return;
      }
      log("warming up every node's JIT: the guest runs " + o.jitWarmupSeconds + " s on each");
      List<String[]> running = new ArrayList<>();
      for (Map.Entry<String, NodeApi> n : apis.entrySet()) {
        List<String> args = List.of("16", "10", STEPS, "1", Integer.toString(o.window));
        running.add(new String[] {n.getKey(), n.getValue().run(hash, args, null, Map.of(), true)});
      }
      sleep(o.jitWarmupSeconds * 1000L);
      for (String[] r : running) {
        apis.get(r[0]).kill(r[1]);
      }
    }

    /** One run of every strategy still offered, in an order that rotates with the run. */
    void round(int mib, int pct, int run, boolean warmUp) {
      List<String> order = new ArrayList<>(o.strategies);
      java.util.Collections.rotate(order, -Math.floorMod(run - 1, order.size()));
      for (String strategy : order) {
        if (cluster.stopping()) {
          throw new IllegalStateException("the nodes are being stopped");
        }
        if (results.notOffered().containsKey(strategy)) {
          continue;
        }
        try {
          PagingSample s = once(mib, pct, strategy, run, warmUp);
          results.samples().add(s);
          logSample(s);
        } catch (NotOffered e) {
          results.notOffered().put(strategy, e.getMessage());
          log(
              strategy
                  + ": not offered by the nodes ("
                  + e.getMessage()
                  + "); skipped from now on");
        }
        sleep(o.gapMs);
      }
    }

    /** A fresh process, settled, migrated once with {@code strategy}, then killed. */
    PagingSample once(int mib, int pct, String strategy, int run, boolean warmUp)
        throws NotOffered {
      long t0 = System.nanoTime();
      NodeApi n1 = source();
      String pid =
          n1.run(
              hash,
              List.of(
                  Integer.toString(mib),
                  Integer.toString(pct),
                  STEPS,
                  "1",
                  Integer.toString(o.window)),
              null,
              Map.of(),
              true);
      PagingSample.Before before = null;
      Sample migration = null;
      PagingSample.Pages pages = null;
      PagingSample.Resume resume = null;
      String failure = "";
      try {
        awaitRunning(n1, pid);
        long[] filled = awaitFilled(n1, pid);
        before = awaitSettled(n1, pid, filled[0], filled[1], t0);
        String to = strategy.equals("gfvm") && before.replica() != null ? before.replica() : "n2";
        Instant sent = Instant.now();
        NodeApi.Answer a = n1.requestMigration(pid, to, strategy, MIGRATION_TIMEOUT);
        if (a.status() == 400 && a.text().contains("unknown strategy")) {
          throw new NotOffered(a.text().strip());
        }
        if (a.status() != 200 && a.status() != 202) {
          failure = "refused: HTTP " + a.status() + " " + a.text().strip();
        } else {
          JsonNode m = awaitEnded(n1, a.json(), 20, MIGRATION_TIMEOUT);
          Instant answered = Instant.now();
          migration =
              Sample.of(
                  mib * 1024L,
                  run,
                  warmUp,
                  m,
                  sent,
                  answered,
                  Duration.between(sent, answered).toNanos() / 1000);
          pages = PagingSample.Pages.of(m);
          if (!migration.committed()) {
            failure = migration.state() + ": " + migration.error();
          } else {
            resume = awaitResume(apis.get(migration.toNode()), pid);
            if (resume == null) {
              failure = "committed, but the guest reported no resume";
            }
          }
        }
      } catch (NotOffered e) {
        throw e;
      } catch (RuntimeException | AssertionError e) {
        failure = e.getMessage() == null ? e.toString() : e.getMessage();
      } finally {
        kill(pid);
      }
      return new PagingSample(
          mib, pct, strategy, run, warmUp, before, migration, pages, resume, failure);
    }

    /** Waits for the guest's "filled N pages, H hot"; returns {N, H}. */
    long[] awaitFilled(NodeApi api, String pid) {
      long deadline = System.nanoTime() + FILL_TIMEOUT.toNanos();
      while (true) {
        String stdout = new String(api.log(pid, "stdout"), StandardCharsets.UTF_8);
        Matcher m = FILLED.matcher(stdout);
        if (m.find()) {
          return new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2))};
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("the guest did not fill its area within " + FILL_TIMEOUT);
        }
        requireRunning(api, pid);
        sleep(100);
      }
    }

    /**
     * Waits until the process has settled: a replica in sync, no more pages dirty than its hot set
     * (and a little slack), and every cold page of its area in the local paging file; twice in a
     * row, 250 ms apart.
     */
    PagingSample.Before awaitSettled(NodeApi api, String pid, long area, long hot, long t0) {
      long deadline = System.nanoTime() + Duration.ofSeconds(o.settleTimeoutSeconds).toNanos();
      int good = 0;
      while (true) {
        JsonNode s = api.status(pid);
        JsonNode p = s.path("paging");
        String replica = null;
        for (JsonNode r : p.path("replicas")) {
          if (r.path("state").asText().equals("in-sync")) {
            replica = r.path("node").asText();
            break;
          }
        }
        long dirty = p.path("dirty").asLong();
        long stored = p.path("stored").asLong();
        // A replica in sync, unless the nodes keep none (replication-factor 1: no entries).
        boolean replicated = replica != null || p.path("replicas").isEmpty();
        boolean settled =
            p.isObject() && replicated && dirty <= hot + DIRTY_SLACK && stored >= area - hot;
        good = settled ? good + 1 : 0;
        if (good >= 2) {
          return new PagingSample.Before(
              area,
              hot,
              p.path("pageSize").asInt(),
              (System.nanoTime() - t0) / 1_000_000,
              stored,
              p.path("flushed").asLong(),
              dirty,
              replica);
        }
        if (!s.path("state").asText().equalsIgnoreCase("running")) {
          throw new IllegalStateException("the process ended before it settled: " + s);
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(
              "the process did not settle within "
                  + o.settleTimeoutSeconds
                  + " s (area "
                  + area
                  + " pages, "
                  + hot
                  + " hot); last status "
                  + s);
        }
        sleep(250);
      }
    }

    /** Waits for the guest's resume line on stderr; null if none comes (the reason is logged). */
    PagingSample.Resume awaitResume(NodeApi api, String pid) {
      long deadline = System.nanoTime() + RESUME_TIMEOUT.toNanos();
      while (true) {
        String stderr = new String(api.log(pid, "stderr"), StandardCharsets.UTF_8);
        PagingSample.Resume r = PagingSample.Resume.find(stderr);
        if (r != null) {
          return r;
        }
        if (stderr.contains("FAIL")) {
          throw new IllegalStateException("the guest failed after its resume: " + stderr.strip());
        }
        if (System.nanoTime() > deadline) {
          log("no resume line within " + RESUME_TIMEOUT + "; stderr: " + stderr.strip());
          return null;
        }
        requireRunning(api, pid);
        sleep(100);
      }
    }

    private static void requireRunning(NodeApi api, String pid) {
      JsonNode s = api.status(pid);
      if (!s.path("state").asText().equalsIgnoreCase("running")) {
        throw new IllegalStateException("the process is no longer running: " + s);
      }
    }

    /** Kills the process wherever it runs now; logs, but does not fail on, what goes wrong. */
    void kill(String pid) {
      try {
        JsonNode s = source().status(pid);
        if (s.path("state").asText().equalsIgnoreCase("running")) {
          apis.getOrDefault(s.path("node").asText(), source()).kill(pid);
        }
      } catch (RuntimeException | AssertionError e) {
        log("could not kill " + pid + ": " + e.getMessage());
      }
    }

    private static void logSample(PagingSample s) {
      String cell =
          String.format(
              Locale.ROOT,
              "%d MiB %d%% %s #%d%s",
              s.mib(),
              s.percent(),
              s.strategy(),
              s.run(),
              s.warmUp() ? " (warm-up)" : "");
      if (s.migration() == null) {
        log(cell + ": " + s.failure());
        return;
      }
      Sample m = s.migration();
      log(
          String.format(
              Locale.ROOT,
              "%s %s->%s %s: freeze %s ms, total %s ms, during freeze %.1f MiB, total %.1f MiB,"
                  + " settled after %s s%s%s",
              cell,
              m.fromNode(),
              m.toNode(),
              m.state(),
              ms(m.totalFreezeMicros()),
              ms(m.totalMicros()),
              s.freezeBytes() / 1048576.0,
              s.totalBytes() / 1048576.0,
              s.before() == null ? "?" : ms(s.before().settleMillis()),
              s.resume() == null
                  ? ""
                  : String.format(
                      Locale.ROOT,
                      ", steps after/before %.2f (slowest %.1f), guest frozen %s ms",
                      s.slowdown(),
                      s.slowestStep(),
                      ms(s.resume().frozenMicros())),
              s.failure().isEmpty() ? "" : "; " + s.failure()));
    }
  }
}
