package dev.ferry.integration;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Live migration between real node JVMs: a three-node cluster (n1 Java 17 interpreter, n2 Java 17
 * compiled, n3 Java 25 interpreter) moves each foundation workload round-robin n1 → n2 → n3 → n1…
 * ten times while it runs, each migration asked of another node as soon as the one before has
 * committed; the program ends exactly as an uninterrupted run on n2 at the same time: same exit
 * code, byte-identical stdout, stderr and output files. The migrations cross engines and JVMs,
 * every node lists the process once and where it is. Without a Java 25 installed, n3 runs on Java
 * 17 and the JVM part is not checked (the test says so on stderr). The same holds for paged
 * processes moved by each paging strategy (gfvm, pre-copy, post-copy, flushing), the generations
 * guest checking every page of its memory as it goes.
 */
@Timeout(240)
class ClusterMigrationTest {
  /**
   * Paged processes keep a replica of their paging file on every node (replication-factor 3), so
   * gfvm can move them round-robin; n3 is flushing's file server.
   */
  @RegisterExtension
  static final NodeHarness nodes =
      new NodeHarness()
          .withNodeConfig(
              "ferry.strategies.gfvm.replication-factor = 3\n"
                  + "ferry.strategies.gfvm.flush-interval = 200ms\n"
                  + "ferry.strategies.gfvm.quiet-time = 400ms\n"
                  + "ferry.strategies.pre-copy.max-rounds = 3\n"
                  + "ferry.strategies.flushing.file-server = n3");

  static final int MIGRATIONS = 10;
  static final String[] ENGINES = {"interpreter", "compiled", "interpreter"};

  /**
   * Generous: on the compiled engine churn's main loop sometimes never leaves HotSpot's bytecode
   * interpreter (its on-stack-replacement compilation is refused: "OSR starts with non-empty
   * stack") and the run takes ten times longer (70–85 s for 1200 steps in CI, so about 150 s for
   * its 2400).
   */
  static final Duration RUN_TIMEOUT = Duration.ofSeconds(300);

  /**
   * A program, its arguments and input files, and the sandbox files it leaves. Sized to run 3 to 10
   * s on the compiled node (whose speed limits the run: the tenth migration lands there), so that
   * ten migrations, one every 0.3 to 1 s, fit.
   */
  record Workload(
      String guest, List<String> args, Map<String, byte[]> files, List<String> outputs) {
    @Override
    public String toString() {
      return guest + " " + String.join(" ", args);
    }
  }

  static final byte[] IN_TXT =
      "input data for the files workload\n".getBytes(StandardCharsets.UTF_8);

  /**
   * files runs in laps of {@link #FILES_LAP} rounds (its files hold at most that many records; each
   * lap truncates them and reopens its descriptors), 2 to 3 s each on the compiled node of a loaded
   * 2-core machine. Ten migrations take 6 to 9 s there (0.5 to 1 s each, most of it waiting for the
   * process's shard to follow it before it can move again); four laps, 11 to 15 s moved, outlast
   * them with room to spare.
   */
  static final int FILES_ROUNDS = 40000;

  static final int FILES_LAP = 10000;

  /** The files left are those of a run of the last lap's rounds. */
  static final int FILES_LAST_LAP = (FILES_ROUNDS - 1) % FILES_LAP + 1;

  static final int LINES_COUNT = 200000;

  static Stream<Workload> workloads() {
    return Stream.of(
        // 2400 steps: with 1200, a run whose loop the JIT compiled well (2.8 s uninterrupted)
        // ended after 7 of its 10 migrations.
        new Workload("churn", List.of("2400", "2000"), Map.of(), List.of()),
        new Workload(
            "files",
            List.of(Integer.toString(FILES_ROUNDS)),
            Map.of("/in.txt", IN_TXT),
            List.of("/data/a.txt", "/data/b.bin")),
        new Workload("clock", List.of("80000", "200"), Map.of(), List.of()),
        new Workload(
            "lines",
            List.of(Integer.toString(LINES_COUNT), "500", "unbuffered"),
            Map.of(),
            List.of()),
        new Workload("spin-preemptible", List.of("2000000000"), Map.of(), List.of()));
  }

  /** The paging strategies, each moving paged processes. */
  static final List<String> PAGING_STRATEGIES =
      List.of(
          System.getProperty("ferry.it.paging-strategies", "gfvm,pre-copy,post-copy,flushing")
              .split(","));

  /**
   * Paged processes under each paging strategy: the generations guest (every 4 KiB page of 2 MiB
   * rewritten each round and checked against the round before) and files (its sandbox moves with
   * it); churn under gfvm too (on the compiled engine churn sometimes runs ten times slower, see
   * RUN_TIMEOUT: once is enough).
   */
  static Stream<Arguments> pagedWorkloads() {
    Workload generations = new Workload("generations", List.of("2", "12000"), Map.of(), List.of());
    Workload churn = workloads().filter(w -> w.guest().equals("churn")).findFirst().orElseThrow();
    Workload files = workloads().filter(w -> w.guest().equals("files")).findFirst().orElseThrow();
    return PAGING_STRATEGIES.stream()
        .flatMap(
            s ->
                (s.equals("gfvm")
                        ? Stream.of(generations, files, churn)
                        : Stream.of(generations, files))
                    .map(w -> Arguments.of(w, s)));
  }

  static List<DaemonProcess> cluster;
  static Optional<JavaRuntime> jdk25;
  static final Map<String, String> modules = new LinkedHashMap<>();

  @BeforeAll
  static void startCluster() {
    JavaRuntime java17 = JavaRuntime.current();
    jdk25 = JavaRuntime.jdk25();
    if (jdk25.isEmpty()) {
      System.err.println(
          "[ClusterMigrationTest] no Java 25 at "
              + System.getProperty("ferry.it.jdk25")
              + ": n3 runs on Java 17 and the cross-JVM checks are skipped");
    }
    cluster =
        nodes.startCluster(3, List.of(ENGINES), List.of(java17, java17, jdk25.orElse(java17)));
    for (DaemonProcess n : cluster) {
      n.api().awaitNodesUp(3, Duration.ofSeconds(60));
    }
    // Modules go to n1 (where the runs start) and n2 (the reference runs); n3 receives each with
    // the process's first migration there.
    Stream.concat(workloads().map(Workload::guest), Stream.of("generations"))
        .forEach(
            g -> {
              String hash = n(1).api().upload(Guests.wasm(g));
              assertEquals(hash, n(2).api().upload(Guests.wasm(g)), "same module, same hash");
              modules.put(g, hash);
            });
  }

  static DaemonProcess n(int number) {
    return cluster.get(number - 1);
  }

  @Test
  void everyNodeListsTheThreeMembersUpWithTheirEnginesAndJvms() {
    for (DaemonProcess asker : cluster) {
      List<JsonNode> members = asker.api().nodes();
      assertEquals(
          List.of("n1", "n2", "n3"),
          members.stream().map(m -> m.path("name").asText()).toList(),
          "members according to " + asker + ": " + members);
      for (JsonNode m : members) {
        DaemonProcess node = n(Integer.parseInt(m.path("name").asText().substring(1)));
        assertAll(
            "member " + m + " according to " + asker.name(),
            () -> assertEquals("up", m.path("status").asText()),
            () -> assertEquals(node.spec().engine(), m.path("engine").asText()),
            () ->
                assertTrue(
                    m.path("jdk").asText().matches(node.spec().java().feature() + "(\\D.*)?"),
                    "JDK " + node.spec().java().feature()),
            () -> assertEquals(node.apiUri().toString(), m.path("httpUrl").asText()),
            () ->
                assertTrue(
                    m.path("address").asText().endsWith(":" + node.spec().clusterPort()),
                    "cluster port " + node.spec().clusterPort()));
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("workloads")
  void aProgramMovedRoundRobinTenTimesAcrossEnginesAndJvmsEndsAsIfNeverMoved(Workload w) {
    moveRoundRobin(w, "data-segment", false);
  }

  /**
   * The same for paged processes under each paging strategy: memory that moves through the paging
   * file (dirty pages only, rounds while running, pages fetched after resuming, a file server)
   * leaves every page as the program left it.
   */
  @ParameterizedTest(name = "{1}: {0}")
  @MethodSource("pagedWorkloads")
  void aPagedProgramMovedByAPagingStrategyEndsAsIfNeverMoved(Workload w, String strategy) {
    moveRoundRobin(w, strategy, true);
  }

  private void moveRoundRobin(Workload w, String strategy, boolean paged) {
    String module = modules.get(w.guest());
    // The reference runs uninterrupted on n2 while the same program is moved around (two
    // processes, two sandboxes): run one after the other, the class would take half as long again.
    long t0 = System.nanoTime();
    CompletableFuture<Outcome> reference =
        CompletableFuture.supplyAsync(() -> runUninterrupted(n(2).api(), module, w));
    String pid = n(1).api().run(module, w.args(), null, w.files(), paged);
    List<JsonNode> moves = new ArrayList<>();
    List<Long> startLatencies = new ArrayList<>();
    int at = 1; // the node it runs on
    for (int i = 0; i < MIGRATIONS; i++) {
      int to = at % 3 + 1;
      // Asked in turn of the source, the destination and the third node (n1, n3, n2, n1…):
      // any node answers for any process. As soon as one has committed the next is asked for.
      DaemonProcess asker = n((at - 1 + i) % 3 + 1);
      Instant sent = Instant.now();
      NodeApi.Answer a =
          asker
              .api()
              .requestMigration(
                  pid, "n" + to, strategy.equals("data-segment") ? null : strategy, true);
      if (a.status() != 200) {
        JsonNode now = asker.api().status(pid);
        boolean ended = !now.path("state").asText().equals("running");
        fail(
            String.format(
                "migration %d of %s, n%d -> n%d: HTTP %d %s; the process is %s%s; the migration"
                    + " before: %s",
                i + 1,
                w,
                at,
                to,
                a.status(),
                a.text(),
                now,
                ended ? " (it ended first: make the workload longer)" : "",
                moves.isEmpty() ? "none" : moves.get(moves.size() - 1)));
      }
      JsonNode m = a.json();
      assertEquals("committed", m.path("state").asText(), "migration " + (i + 1) + ": " + m);
      assertEquals("n" + at, m.path("fromNode").asText(), m.toString());
      assertEquals("n" + to, m.path("toNode").asText(), m.toString());
      moves.add(m);
      startLatencies.add(
          Duration.between(sent, Instant.parse(m.path("requestedAt").asText())).toMillis());
      at = to;
      // The third node knows where it is now.
      JsonNode status = n(at % 3 + 1).api().status(pid);
      assertEquals(
          "n" + at, status.path("node").asText(), "after migration " + (i + 1) + ": " + status);
      if (moves.size() < MIGRATIONS) {
        assertEquals(
            "running",
            status.path("state").asText(),
            "after migration " + (i + 1) + " of " + w + " (make the workload longer): " + status);
      }
      if (moves.size() == MIGRATIONS / 2) {
        assertEveryNodeListsItOnce(pid, "n" + at);
      }
    }
    long migratedMillis = (System.nanoTime() - t0) / 1_000_000;

    // Read the result through a node it did not end on.
    NodeApi reader = n(at % 3 + 1).api();
    JsonNode end = reader.awaitFinal(pid, RUN_TIMEOUT);
    long runMillis = (System.nanoTime() - t0) / 1_000_000;
    Outcome moved = outcome(reader, pid, end, w, runMillis);
    Outcome expected = reference.join();
    System.out.printf(
        "[ClusterMigrationTest] %s %s: reference on n2 %d ms; moved run %d ms, %d migrations in"
            + " its first %d ms: %s%n",
        strategy,
        w,
        expected.millis(),
        runMillis,
        moves.size(),
        migratedMillis,
        describe(moves, startLatencies));

    assertEquals("exited", end.path("state").asText(), "end of the moved run: " + end);
    assertEquals("n" + at, end.path("node").asText(), "it ended where it was last moved: " + end);
    assertEquals(expected.exitCode(), moved.exitCode(), "exit code; end: " + end);
    assertArrayEquals(expected.stdout(), moved.stdout(), w + ": stdout differs from the reference");
    assertArrayEquals(expected.stderr(), moved.stderr(), w + ": stderr differs from the reference");
    for (String f : w.outputs()) {
      assertArrayEquals(expected.files().get(f), moved.files().get(f), w + ": " + f + " differs");
    }
    assertEquals(MIGRATIONS, moves.size(), w + " was moved " + moves.size() + " times");
    assertEveryNodeListsItOnce(pid, "n" + at);
    assertMovesCrossedEnginesAndJvms(pid, moves, strategy);
  }

  /** One line per migration: route, start latency, whole time, time frozen, bytes. */
  private static String describe(List<JsonNode> moves, List<Long> startLatencies) {
    List<String> parts = new ArrayList<>();
    for (int i = 0; i < moves.size(); i++) {
      JsonNode m = moves.get(i);
      parts.add(
          String.format(
              "%s>%s start %d ms, %d ms, frozen %d ms, %d KiB",
              m.path("fromNode").asText(),
              m.path("toNode").asText(),
              startLatencies.get(i),
              m.path("totalMicros").asLong() / 1000,
              m.path("totalFreezeMicros").asLong() / 1000,
              m.path("bytesMoved").asLong() / 1024));
    }
    return String.join("; ", parts);
  }

  /** The cluster's own record of the moves agrees, and they crossed engines and JVMs. */
  private static void assertMovesCrossedEnginesAndJvms(
      String pid, List<JsonNode> moves, String strategy) {
    List<JsonNode> recorded =
        n(3).api().migrations().stream().filter(m -> m.path("pid").asText().equals(pid)).toList();
    assertEquals(
        moves.size(), recorded.size(), "migrations of " + pid + " the cluster lists: " + recorded);
    assertTrue(
        recorded.stream().allMatch(m -> m.path("state").asText().equals("committed")),
        "all committed: " + recorded);
    for (JsonNode m : moves) {
      int from = Integer.parseInt(m.path("fromNode").asText().substring(1));
      int to = Integer.parseInt(m.path("toNode").asText().substring(1));
      assertAll(
          "migration " + m,
          () -> assertEquals(ENGINES[from - 1], m.path("fromEngine").asText(), "fromEngine"),
          () -> assertEquals(ENGINES[to - 1], m.path("toEngine").asText(), "toEngine"),
          () -> assertEquals(strategy, m.path("strategy").asText(), "strategy"),
          () ->
              assertEquals(
                  !strategy.equals("data-segment"), m.has("pages"), "pages reported: " + m),
          () -> assertTrue(m.path("bytesMoved").asLong() > 0, "bytesMoved"),
          () -> assertTrue(m.path("imageBytes").asLong() > 0, "imageBytes"),
          () -> assertTrue(m.path("totalMicros").asLong() > 0, "totalMicros"));
    }
    assertTrue(
        moves.stream()
            .anyMatch(m -> !m.path("fromEngine").asText().equals(m.path("toEngine").asText())),
        "no migration changed engine: " + moves);
    if (jdk25.isPresent()) {
      assertTrue(
          moves.stream().anyMatch(m -> m.path("toNode").asText().equals("n3")),
          "no migration landed on the Java 25 node n3: " + moves);
      assertTrue(
          moves.stream().anyMatch(m -> m.path("fromNode").asText().equals("n3")),
          "no migration left the Java 25 node n3: " + moves);
    }
  }

  /** {@code GET /v1/processes} on every node lists {@code pid} once, on {@code node}. */
  private static void assertEveryNodeListsItOnce(String pid, String node) {
    for (DaemonProcess asker : cluster) {
      List<JsonNode> listed =
          asker.api().list().stream().filter(p -> p.path("id").asText().equals(pid)).toList();
      assertEquals(1, listed.size(), asker.name() + " lists " + pid + " as " + listed);
      assertEquals(node, listed.get(0).path("node").asText(), asker.name() + ": " + listed);
    }
  }

  /** What a run produced, and how long it took until it ended. */
  record Outcome(
      int exitCode, byte[] stdout, byte[] stderr, Map<String, byte[]> files, long millis) {}

  static Outcome runUninterrupted(NodeApi api, String module, Workload w) {
    long t0 = System.nanoTime();
    String pid = api.run(module, w.args(), null, w.files());
    JsonNode end = api.awaitFinal(pid, RUN_TIMEOUT);
    long millis = (System.nanoTime() - t0) / 1_000_000;
    assertEquals("exited", end.path("state").asText(), "reference run of " + w + ": " + end);
    Outcome o = outcome(api, pid, end, w, millis);
    assertEquals(0, o.exitCode(), "reference run of " + w + ": " + end);
    // The reference itself is what the guest defines, where that is known here.
    switch (w.guest()) {
      case "lines" -> {
        assertArrayEquals(Guests.linesStdout(LINES_COUNT), o.stdout(), "reference stdout");
        assertArrayEquals(Guests.linesStderr(LINES_COUNT, 500), o.stderr(), "reference stderr");
      }
      case "files" -> {
        assertArrayEquals(Guests.filesA(FILES_LAST_LAP), o.files().get("/data/a.txt"), "a.txt");
        assertArrayEquals(Guests.filesB(FILES_LAST_LAP), o.files().get("/data/b.bin"), "b.bin");
        // "lap K" before the last lap, then its last round, positions as at the end of a run of
        // FILES_LAST_LAP rounds.
        String stdout = new String(o.stdout(), StandardCharsets.US_ASCII);
        int last = FILES_LAST_LAP - 1; // the last round, counted within its lap
        String tail =
            String.format(
                Locale.ROOT,
                "round %d pos %d %d %d ok\nfiles ok\n",
                FILES_ROUNDS - 1,
                32L * (last + 1),
                32L * ((7 * last) % (last + 1)) + 10,
                32L * (last + 1));
        assertTrue(
            stdout.contains("\nlap " + (FILES_ROUNDS - 1) / FILES_LAP + "\n")
                && stdout.endsWith(tail),
            "reference stdout of files, its end: "
                + stdout.substring(Math.max(0, stdout.length() - 200)));
      }
      default -> assertTrue(o.stdout().length > 0, "reference run of " + w + " wrote nothing");
    }
    return o;
  }

  static Outcome outcome(NodeApi api, String pid, JsonNode end, Workload w, long millis) {
    NodeApi.Output out = api.output(pid);
    Map<String, byte[]> files = new LinkedHashMap<>();
    for (String f : w.outputs()) {
      files.put(f, api.file(pid, f));
    }
    return new Outcome(end.path("exitCode").asInt(-1), out.stdout(), out.stderr(), files, millis);
  }
}
