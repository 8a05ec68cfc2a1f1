package dev.ferry.api.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;
import dev.ferry.api.FakeClusterService;
import dev.ferry.api.TestServer;
import dev.ferry.api.cli.FerryCliTest.Result;
import dev.ferry.api.http.ApiJson;
import dev.ferry.api.http.FerryHttpServer;
import dev.ferry.node.service.ProcessState;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The cluster commands (nodes, migrate, migrations, cancel, events) against the fake service. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ClusterCliTest {
  private static final String TIME = "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}";

  private static TestServer server;
  private static FakeClusterService service;

  @BeforeAll
  static void start() throws Exception {
    // A short heartbeat, so that the node notices quickly that `ferry events` has gone.
    server = new TestServer("", FerryHttpServer.REQUEST_TIMEOUT, Duration.ofMillis(200));
    service = server.service;
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  @AfterEach
  void manualMigrationsAndNoStreamLeftOpen() throws Exception {
    service.autoAdvance = false;
    service.abortReason = null;
    // A `ferry events` that has returned has closed its connection: the node must unsubscribe.
    assertTrue(
        service.awaitNoSubscribers(Duration.ofSeconds(10)),
        "the node still holds the subscription of a finished ferry events");
  }

  static Result ferry(String... args) {
    return FerryCliTest.ferry(Map.of(ApiOptions.API_ENV, server.url()), args);
  }

  /** Starts a migration through the CLI and returns its id. */
  private static String migrate(String pid, String... options) {
    String[] args = new String[options.length + 2];
    args[0] = "migrate";
    System.arraycopy(options, 0, args, 1, options.length);
    args[args.length - 1] = pid;
    Result r = ferry(args);
    assertEquals(0, r.exitCode(), r.stderr());
    return r.stdout().strip();
  }

  // ---------------------------------------------------------------- nodes

  @Test
  void nodesListsTheClusterAsATable() throws Exception {
    service.start();
    Result r = ferry("nodes");
    assertEquals(0, r.exitCode(), r.stderr());
    String[] lines = r.stdout().split("\n");
    assertEquals(4, lines.length, r.stdout());
    assertTrue(
        lines[0].matches("NAME\\s+STATUS\\s+ENGINE\\s+JDK\\s+LOAD\\s+PROCS\\s+ADDRESS"), lines[0]);
    assertTrue(
        lines[1].matches(
            "fake-node\\s+up\\s+interpreter\\s+17\\.0\\.15 \\(Fake\\)\\s+0\\.25\\s+\\d+"
                + "\\s+pekko://ferry@127\\.0\\.0\\.1:7401"),
        lines[1]);
    assertTrue(
        lines[3].matches(
            "n3\\s+unreachable\\s+-\\s+-\\s+-\\s+-\\s+pekko://ferry@127\\.0\\.0\\.1:7421"),
        lines[3]);

    r = ferry("nodes", "--json");
    JsonNode nodes = ApiJson.mapper().readTree(r.stdoutBytes()).path("nodes");
    assertEquals(3, nodes.size());
    assertEquals(-1, nodes.get(2).path("load").asDouble());
  }

  // ---------------------------------------------------------------- migrate

  @Test
  void migratePrintsOnlyTheMigrationId() throws Exception {
    String pid = service.start();
    Result r = ferry("migrate", "--to", "n2", "--strategy", "gfvm", pid);
    assertEquals(0, r.exitCode(), r.stderr());
    assertTrue(r.stdout().matches("m-\\d+\n"), "stdout was: '" + r.stdout() + "'");
    assertEquals("", r.stderr());
    String id = r.stdout().strip();
    assertEquals("pending", service.migrationState(id));

    r = ferry("migrations", "--json", id);
    JsonNode m = ApiJson.mapper().readTree(r.stdoutBytes());
    assertEquals("gfvm", m.path("strategy").asText());
    assertEquals("n2", m.path("toNode").asText());
    assertEquals(pid, m.path("pid").asText());
  }

  @Test
  void migrateWaitPrintsWhatEachPhaseCostAndExits0WhenCommitted() {
    service.autoAdvance = true;
    String pid = service.start();
    Result r = ferry("migrate", "--wait", pid);
    assertEquals(0, r.exitCode(), r.stderr());
    String id = service.lastMigrationOf(pid);
    assertEquals(
        id
            + " committed: "
            + pid
            + " fake-node -> n2 (data-segment)\n"
            + "  freeze     1.234 ms\n"
            + "  capture    0.567 ms\n"
            + "  transfer   8.901 ms\n"
            + "  restore    2.345 ms\n"
            + "  downtime   13.047 ms\n"
            + "  total      15.000 ms\n"
            + "  moved      1.5 MiB (image 1.5 MiB)\n",
        r.stdout());
    assertEquals("", r.stderr());
    assertEquals("n2", service.node(pid));
  }

  @Test
  void migrateWaitExits1WithTheReasonWhenAborted() throws Exception {
    service.autoAdvance = true;
    service.abortReason = "n2 ran out of disk";
    String pid = service.start();
    Result r = ferry("migrate", "--wait", "--json", pid);
    assertEquals(ExitCodes.ERROR, r.exitCode());
    String id = service.lastMigrationOf(pid);
    assertEquals(
        "ferry: migration "
            + id
            + " aborted: n2 ran out of disk; "
            + pid
            + " runs on at fake-node\n",
        r.stderr());
    assertEquals("aborted", ApiJson.mapper().readTree(r.stdoutBytes()).path("state").asText());
    assertEquals("fake-node", service.node(pid));
    assertEquals(ProcessState.RUNNING, service.state(pid));
  }

  @Test
  void migrateWaitExits1WhenTheMigrationIsCancelled() throws Exception {
    String pid = service.start();
    CompletableFuture<Result> waiting =
        CompletableFuture.supplyAsync(() -> ferry("migrate", "--wait", pid));
    String id;
    while ((id = service.lastMigrationOf(pid)) == null) {
      Thread.sleep(5);
    }
    Result cancel = ferry("cancel", id);
    assertEquals(0, cancel.exitCode(), cancel.stderr());
    Result r = waiting.get(30, TimeUnit.SECONDS);
    assertEquals(ExitCodes.ERROR, r.exitCode());
    assertTrue(r.stdout().startsWith(id + " cancelled: "), r.stdout());
    assertTrue(r.stderr().startsWith("ferry: migration " + id + " cancelled: "), r.stderr());
  }

  @Test
  void migrateFailuresExitWithTheirCodes() {
    String pid = service.start();
    Result r = ferry("migrate", "p-404");
    assertEquals(ExitCodes.NOT_FOUND, r.exitCode());
    assertEquals("ferry: no process 'p-404'\n", r.stderr());
    assertEquals("", r.stdout());

    r = ferry("migrate", "--to", "n9", pid);
    assertEquals(ExitCodes.NOT_FOUND, r.exitCode());
    assertTrue(r.stderr().contains("no node 'n9'"), r.stderr());

    r = ferry("migrate", "--to", "fake-node", pid);
    assertEquals(ExitCodes.CONFLICT, r.exitCode());
    assertTrue(r.stderr().contains("already on fake-node"), r.stderr());

    r = ferry("migrate", "--strategy", "teleport", pid);
    assertEquals(ExitCodes.BAD_REQUEST, r.exitCode());
    assertTrue(r.stderr().contains("unknown strategy 'teleport'"), r.stderr());

    migrate(pid);
    r = ferry("migrate", pid);
    assertEquals(ExitCodes.CONFLICT, r.exitCode());
    assertTrue(r.stderr().contains("already migrating"), r.stderr());
  }

  // ---------------------------------------------------------------- migrations, cancel

  @Test
  void migrationsListsNewestFirstAsATable() {
    service.autoAdvance = true;
    String pid = service.start();
    Result done = ferry("migrate", "--wait", pid);
    assertEquals(0, done.exitCode(), done.stderr());
    String committed = service.lastMigrationOf(pid);
    service.autoAdvance = false;
    String pending = migrate(service.start());

    Result r = ferry("migrations");
    assertEquals(0, r.exitCode(), r.stderr());
    String[] lines = r.stdout().split("\n");
    assertTrue(
        lines[0].matches(
            "ID\\s+PID\\s+FROM\\s+TO\\s+STATE\\s+FREEZE\\(ms\\)\\s+TOTAL\\(ms\\)\\s+BYTES"),
        lines[0]);
    assertTrue(lines[1].startsWith(pending + " "), "newest first: " + r.stdout());
    assertTrue(
        lines[1].matches(
            pending + "\\s+p-\\d+\\s+fake-node\\s+n2\\s+pending\\s+0\\.000\\s+0\\.000\\s+0"),
        lines[1]);
    assertTrue(
        lines[2].matches(
            committed
                + "\\s+"
                + pid
                + "\\s+fake-node\\s+n2\\s+committed\\s+13\\.047\\s+15\\.000\\s+1572864"),
        lines[2]);
  }

  @Test
  void migrationsWithAnIdShowsTheWholeRecord() {
    service.autoAdvance = true;
    service.abortReason = "n2 did not answer";
    String pid = service.start();
    ferry("migrate", "--wait", pid);
    String id = service.lastMigrationOf(pid);
    Result r = ferry("migrations", id);
    assertEquals(0, r.exitCode(), r.stderr());
    assertTrue(r.stdout().startsWith("ID:        " + id + "\n"), r.stdout());
    assertTrue(r.stdout().contains("Process:   " + pid + "\n"), r.stdout());
    assertTrue(r.stdout().contains("From:      fake-node (interpreter)\n"), r.stdout());
    assertTrue(r.stdout().contains("To:        n2 (compiled)\n"), r.stdout());
    assertTrue(r.stdout().contains("State:     aborted\n"), r.stdout());
    assertTrue(r.stdout().matches("(?s).*Requested: " + TIME + "\n.*"), r.stdout());
    assertTrue(r.stdout().contains("Downtime:  0.000 ms\n"), r.stdout());
    assertTrue(r.stdout().endsWith("Error:     n2 did not answer\n"), r.stdout());

    assertEquals(ExitCodes.NOT_FOUND, ferry("migrations", "m-404").exitCode());
  }

  @Test
  void cancelCancelsOnceThenExits4() {
    String pid = service.start();
    String id = migrate(pid);
    Result r = ferry("cancel", id);
    assertEquals(0, r.exitCode(), r.stderr());
    assertEquals(id + " cancelled\n", r.stdout());
    assertEquals("fake-node", service.node(pid));

    r = ferry("cancel", id);
    assertEquals(ExitCodes.CONFLICT, r.exitCode());
    assertEquals("ferry: migration " + id + " has already ended (cancelled)\n", r.stderr());
    assertEquals(ExitCodes.NOT_FOUND, ferry("cancel", "m-404").exitCode());
  }

  /**
   * A node answers a cancel 202 when the migration has not ended within its wait; if it then
   * commits, the cancel failed: exit 4 with the node's conflict, not "committed" and exit 0.
   */
  @Test
  void cancelExits4WhenTheMigrationCommitsAfterTheNodeStoppedWaiting() throws Exception {
    String pid = service.start();
    String id = migrate(pid);
    while (!service.migrationState(id).equals("restoring")) {
      service.advance(id);
    }
    String restoring = server.get("/v1/migrations/" + id).body();
    service.advance(id);
    assertEquals("committed", service.migrationState(id));
    String committed = server.get("/v1/migrations/" + id).body();
    AtomicInteger reads = new AtomicInteger();
    HttpServer node = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    node.createContext(
        "/v1/migrations/" + id,
        ex -> {
          boolean cancel = ex.getRequestMethod().equals("DELETE");
          // still restoring at the 202 and at the first read, committed from the second on
          String body = cancel || reads.incrementAndGet() < 2 ? restoring : committed;
          byte[] b = body.getBytes(StandardCharsets.UTF_8);
          ex.getResponseHeaders().set("Content-Type", "application/json");
          ex.sendResponseHeaders(cancel ? 202 : 200, b.length);
          ex.getResponseBody().write(b);
          ex.close();
        });
    node.start();
    try {
      Result r =
          FerryCliTest.ferry(
              Map.of(ApiOptions.API_ENV, "http://127.0.0.1:" + node.getAddress().getPort()),
              "cancel",
              id);
      assertEquals(ExitCodes.CONFLICT, r.exitCode(), r.stdout());
      assertEquals("", r.stdout());
      assertEquals(
          "ferry: migration "
              + id
              + " committed before it could be cancelled; "
              + pid
              + " runs on "
              + FakeClusterService.OTHER
              + "\n",
          r.stderr());
      assertTrue(reads.get() >= 2, "the CLI asked until the record had ended");
    } finally {
      node.stop(0);
    }
  }

  @Test
  void commitCommitsAMigrationInDoubtOnceThenExits4() {
    String pid = service.start();
    String id = migrate(pid);
    service.advance(id);
    Result r = ferry("commit", id);
    assertEquals(ExitCodes.CONFLICT, r.exitCode(), r.stderr());
    assertTrue(r.stderr().contains("is freezing, not in doubt"), r.stderr());

    service.holdInDoubt(id);
    r = ferry("migrations");
    assertTrue(r.stdout().contains(" in_doubt "), r.stdout());
    r = ferry("commit", id);
    assertEquals(0, r.exitCode(), r.stderr());
    assertTrue(r.stdout().startsWith(id + " committed\ncommitted by an operator"), r.stdout());
    assertEquals("n2", service.node(pid));

    assertEquals(ExitCodes.CONFLICT, ferry("commit", id).exitCode());
    assertEquals(ExitCodes.NOT_FOUND, ferry("commit", "m-404").exitCode());
  }

  // ---------------------------------------------------------------- events

  @Test
  void eventsPrintsOneLinePerEventAndTheNodeUnsubscribesAfterCount() throws Exception {
    int closedBefore = service.closedSubscriptions();
    CompletableFuture<Result> events =
        CompletableFuture.supplyAsync(() -> ferry("events", "--count", "4"));
    assertTrue(
        service.awaitSubscribers(1, Duration.ofSeconds(20)), "ferry events did not subscribe");
    service.emit(FakeClusterService.nodeEvent(1_735_787_045_000_000L, "n2", "up"));
    service.emit(FakeClusterService.processEvent(1_735_787_046_000_000L, "p-9", "exited", 2));
    String pid = service.start();
    String id = migrate(pid, "--to", "n2");
    service.abort(id, "n2 went away");
    Result r = events.get(30, TimeUnit.SECONDS);
    assertEquals(0, r.exitCode(), r.stderr());
    String[] lines = r.stdout().split("\n");
    assertEquals(4, lines.length, r.stdout());
    assertTrue(
        lines[0].matches(TIME + " fake-node node n2 up \\(pekko://ferry@127\\.0\\.0\\.1:7411\\)"),
        lines[0]);
    assertTrue(
        lines[1].matches(TIME + " fake-node process p-9 exited \\(exit code 2\\) on interpreter"),
        lines[1]);
    assertTrue(
        lines[2].matches(
            TIME + " fake-node migration " + id + " " + pid + " fake-node -> n2 pending"),
        lines[2]);
    assertTrue(
        lines[3].matches(
            TIME
                + " fake-node migration "
                + id
                + " "
                + pid
                + " fake-node -> n2 aborted: n2 went away"),
        lines[3]);
    assertTrue(
        service.awaitClosedSubscriptions(closedBefore + 1, Duration.ofSeconds(10)),
        "the node still holds the subscription of a finished ferry events");
  }

  @Test
  void eventsJsonPrintsEachEventsJsonOnOneLine() throws Exception {
    CompletableFuture<Result> events =
        CompletableFuture.supplyAsync(() -> ferry("events", "--json", "--count", "2"));
    assertTrue(service.awaitSubscribers(1, Duration.ofSeconds(20)));
    service.emit(FakeClusterService.processEvent(1_735_787_045_000_000L, "p-1", "started", 0));
    service.emit(FakeClusterService.processEvent(1_735_787_045_000_001L, "p-1", "killed", 0));
    Result r = events.get(30, TimeUnit.SECONDS);
    assertEquals(0, r.exitCode(), r.stderr());
    String[] lines = r.stdout().split("\n");
    assertEquals(2, lines.length, r.stdout());
    JsonNode first = ApiJson.mapper().readTree(lines[0]);
    assertEquals("process", first.path("kind").asText());
    assertEquals("2025-01-02T03:04:05Z", first.path("at").asText());
    assertEquals(
        "killed", ApiJson.mapper().readTree(lines[1]).path("process").path("what").asText());
  }

  @Test
  void eventsRefusesACountBelowOneAndSaysWhenTheNodeIsUnreachable() throws Exception {
    Result r = ferry("events", "--count", "0");
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertEquals("ferry: --count must be at least 1, got 0\n", r.stderr());

    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    r = FerryCliTest.ferry(Map.of(), "events", "--api", "http://127.0.0.1:" + port);
    assertEquals(ExitCodes.UNREACHABLE, r.exitCode());
  }

  @Test
  void helpListsTheClusterCommands() {
    Result r = ferry("--help");
    for (String c : List.of("nodes", "migrate", "migrations", "cancel", "commit", "events")) {
      assertTrue(r.stdout().contains("  " + c + " "), c + " missing from:\n" + r.stdout());
    }
  }
}
