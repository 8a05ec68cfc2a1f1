package dev.ferry.integration;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Migrations that go wrong between real node JVMs, on one three-node cluster (n1 interpreter, n2
 * compiled, n3 interpreter, all on the test JVM's Java; transfer-timeout 3 s): a destination that
 * hangs (SIGSTOP) and dies (SIGKILL) mid-transfer, an operator's cancel mid-transfer (of a large
 * image), a source that dies right after the commit or during the transfer, a destination whose
 * machine crashes just before or just after it answers (a failpoint, {@code FERRY_TEST_FAILPOINT},
 * halts it there), and refused requests. Each time the process runs in exactly one place and ends
 * with the output it would have had untouched.
 *
 * <p>n1 is the seed node (and hosts the shard coordinator): it is never stopped. A node a test
 * kills is started again on its data directory before the next test.
 */
@Timeout(180)
class MigrationFaultTest {
  static final String TRANSFER_TIMEOUT = "3s";

  @RegisterExtension
  static final NodeHarness nodes =
      new NodeHarness()
          .withNodeConfig("ferry.strategies.data-segment.transfer-timeout = " + TRANSFER_TIMEOUT);

  /**
   * lines with this many lines runs about 8 s on an interpreter node: long enough to outlast a
   * failed migration (frozen up to the transfer-timeout) and be still running after it.
   */
  static final int LINES = 80_000;

  /** A longer lines, still running well after it has moved to the compiled node. */
  static final int MORE_LINES = 150_000;

  static final int STDERR_EVERY = 1000;
  static final Duration RUN_TIMEOUT = Duration.ofSeconds(120);
  static final Duration MIGRATION_TIMEOUT = Duration.ofSeconds(30);

  /** How long a request may take while the cluster notices a dead node and downs it. */
  static final Duration DOWNING_PATIENCE = Duration.ofSeconds(90);

  /**
   * pages with 32 MiB of memory: its image takes about half a second to move (the window for a
   * cancel); 3000 rounds run about 8 s on an interpreter node.
   */
  static final List<String> PAGES = List.of("32", "3000", "1");

  static List<DaemonProcess> cluster;
  static String lines;
  static String pages;

  @BeforeAll
  static void startCluster() {
    cluster =
        nodes.startCluster(
            3, List.of("interpreter", "compiled", "interpreter"), List.of(JavaRuntime.current()));
    for (DaemonProcess n : cluster) {
      lines = n.api().upload(Guests.wasm("lines"));
      pages = n.api().upload(Guests.wasm("pages"));
    }
  }

  static DaemonProcess n(int number) {
    return cluster.get(number - 1);
  }

  /** Every node runs, none is stopped, and each lists the three members up. */
  @BeforeEach
  void wholeCluster() {
    long t0 = System.nanoTime();
    for (DaemonProcess n : cluster) {
      n.unpause();
      if (!n.isAlive()) {
        n.start();
      }
    }
    for (DaemonProcess n : cluster) {
      awaitMembersUp(n);
    }
    log("three members up after %d ms", since(t0));
  }

  /** A test that failed half-way must not leave a node stopped for the next one. */
  @AfterEach
  void unpauseAll() {
    for (DaemonProcess n : cluster) {
      if (n.isPaused()) {
        n.unpause();
      }
    }
  }

  /**
   * A node that hangs (SIGSTOP) long enough for the others to down it (the split-brain resolver,
   * after 7 s of it unreachable) does not run on as a zombie when it wakes: it checkpoints its
   * process, says why on stderr and exits 1 (for a service manager to restart it). Started again,
   * it rejoins, and the process ends there with the output it would have had untouched.
   */
  @Test
  void aNodeDownedWhileItHungStopsAndItsProcessResumesWhenItIsStartedAgain() {
    // long enough to be still running when n3, woken, learns it was removed (seconds later)
    String pid = startLines(n(3).api(), MORE_LINES);
    long paused = System.nanoTime();
    n(3).pause();
    try {
      long deadline = System.nanoTime() + DOWNING_PATIENCE.toNanos();
      String n3 = "127.0.0.1:" + n(3).spec().clusterPort();
      boolean namedWhileUnreachable = false;
      while (true) {
        List<JsonNode> members = n(1).api().nodes();
        var listed =
            members.stream().filter(m -> m.path("address").asText().endsWith(n3)).findFirst();
        if (listed.isEmpty()) {
          break;
        }
        if (listed.get().path("status").asText().equals("unreachable")) {
          // still named by its name, though its agent no longer answers
          assertEquals("n3", listed.get().path("name").asText(), members.toString());
          namedWhileUnreachable = true;
        }
        if (System.nanoTime() > deadline) {
          throw new AssertionError("n1 still lists n3 after " + DOWNING_PATIENCE);
        }
        DaemonProcess.sleep(200);
      }
      assertTrue(namedWhileUnreachable, "n1 never listed n3 as unreachable");
      log("n3 removed from the cluster %d ms after it hung", since(paused));
    } finally {
      n(3).unpause();
    }
    long woken = System.nanoTime();
    int code = n(3).awaitExit(Duration.ofSeconds(60));
    log("n3 exited %d ms after it was woken", since(woken));
    assertEquals(1, code, "exit code of a daemon the cluster removed\n" + n(3).logTail());
    awaitLogLine(n(3), "process " + pid + " checkpointed for shutdown");
    awaitLogLine(n(3), "ferry: node n3 was removed from the cluster");
    // Meanwhile its process is not lost, and the others say where it is, at once.
    long asked = System.nanoTime();
    NodeApi.Answer meanwhile = n(1).api().get("/v1/processes/" + pid);
    log(
        "while n3 is gone, n1 answers for %s in %d ms: %d %s",
        pid, since(asked), meanwhile.status(), meanwhile.text());
    assertEquals(503, meanwhile.status(), meanwhile.text());
    assertTrue(
        meanwhile.text().contains("is on node n3, which is not in the cluster now"),
        meanwhile.text());
    // The same while the one other member does not answer (a machine starving it for seconds,
    // as a loaded CI machine once did): n1 knows where the process is without asking n2. Before,
    // it asked a majority, i.e. n2, and after 5 s answered 404 "no process … in the cluster".
    n(2).pause();
    NodeApi.Answer n2Silent;
    try {
      asked = System.nanoTime();
      n2Silent = n(1).api().get("/v1/processes/" + pid);
      log("with n2 paused too, n1 answers in %d ms: %d", since(asked), n2Silent.status());
    } finally {
      n(2).unpause();
    }
    assertEquals(503, n2Silent.status(), n2Silent.text());
    assertTrue(n2Silent.text().contains("is on node n3"), n2Silent.text());
    n(3).start();
    awaitMembersUp(n(3));
    assertEndsAsIfUntouched(n(1).api(), pid, "n3", MORE_LINES);
    assertListedOnceOn(pid, "n3", cluster);
  }

  @Test
  void abortsAndResumesAtSourceWhenTheDestinationDiesDuringTheTransfer() {
    NodeApi api = n(1).api();
    sourceKnowsTheModuleIsOn(api, startLines(api, LINES), "n3");
    String pid = startLines(api, LINES);

    JsonNode end;
    try (NodeApi.EventStream events = api.events()) {
      // n3 hangs before the migration starts, so the transfer is under way when it dies. The
      // migration's progress comes from the event stream: listings (GET /v1/migrations) ask every
      // node, and wait for the hung one.
      n(3).pause();
      String id = api.migrate(pid, "n3").path("id").asText();
      JsonNode during = awaitTransferring(events, id);
      assertEquals("transferring", during.path("state").asText(), "before the kill: " + during);
      long killed = System.nanoTime();
      assertEquals(137, n(3).kill(), "exit code of the SIGKILLed destination");
      end = events.awaitMigration(id, NodeApi::hasEnded, "ended", MIGRATION_TIMEOUT);
      log("destination killed; the migration ended %d ms later: %s", since(killed), end);
    }
    assertEquals("aborted", end.path("state").asText(), "migration after its destination died");
    assertFalse(end.path("error").asText().isBlank(), "an aborted migration says why: " + end);
    assertEquals("aborted", api.migration(end.path("id").asText()).path("state").asText());
    JsonNode status = n(2).api().status(pid);
    assertEquals("n1", status.path("node").asText(), "it runs on at the source: " + status);
    assertEquals("running", status.path("state").asText(), "it runs on at the source: " + status);
    assertListedOnceOn(pid, "n1", List.of(n(1), n(2)));

    assertEndsAsIfUntouched(api, pid, "n1", LINES);
    // The dead destination, back, holds no copy either.
    restartKilledNodeAndAssertNoCopy("destination", pid, "n1");
  }

  @Test
  void aMigrationCancelledDuringTheTransferLeavesTheProcessRunningAtTheSource() {
    NodeApi api = n(1).api();
    String pid = api.run(pages, PAGES);
    api.awaitStatus(pid, s -> s.path("stdoutBytes").asLong() > 0, "some output", RUN_TIMEOUT);

    // A large image keeps the transfer going for a while: cancelled as soon as it starts. (A
    // destination stopped with SIGSTOP would not do: DELETE /v1/migrations/{id} first looks the
    // migration up on every node, waits 5 s for the hung one, and by then the migration has
    // aborted on its own.) On a warm cluster the 32 MiB can move and commit before the cancel
    // arrives (a right answer, 409, but not the case under test): then it is tried again, from
    // the node the process went to.
    int from = 1;
    int to = 2;
    String id;
    NodeApi.Answer a;
    for (int attempt = 1; ; attempt++) {
      try (NodeApi.EventStream events = api.events()) {
        id = n(from).api().migrate(pid, "n" + to).path("id").asText();
        JsonNode during = awaitTransferring(events, id);
        assertEquals("transferring", during.path("state").asText(), "before the cancel: " + during);
        // Any node may be asked to cancel.
        a = n(3).api().cancelMigration(id);
      }
      if (a.status() != 409 || attempt == 5) {
        break;
      }
      assertTrue(a.text().contains("committed before it could be cancelled"), a.text());
      log("attempt %d: the migration committed before the cancel; again, from n%d", attempt, to);
      int t = from;
      from = to;
      to = t;
    }
    assertEquals(200, a.status(), a.request() + ": " + a.text());
    JsonNode cancelled = a.json();
    assertEquals("cancelled", cancelled.path("state").asText(), "answer to DELETE: " + cancelled);
    assertEquals(id, cancelled.path("id").asText());
    assertFalse(cancelled.path("error").asText().isBlank(), "says why: " + cancelled);
    assertEquals("cancelled", n(2).api().migration(id).path("state").asText());
    NodeApi.Answer again = api.cancelMigration(id);
    assertEquals(409, again.status(), "cancelling an ended migration: " + again.text());

    String source = "n" + from;
    JsonNode status = n(3).api().status(pid);
    assertEquals(source, status.path("node").asText(), "it runs on at the source: " + status);
    assertEquals("running", status.path("state").asText(), "it runs on at the source: " + status);
    // The destination has dropped what it had received.
    assertNoLocalCopy(n(to), pid);
    assertListedOnceOn(pid, source, cluster);

    JsonNode end = api.awaitFinal(pid, RUN_TIMEOUT);
    assertEquals("exited", end.path("state").asText(), pid + ": " + end);
    assertEquals(source, end.path("node").asText(), pid + ": " + end);
    assertEquals(0, end.path("exitCode").asInt(-1), pid + ": " + end);
    NodeApi.Output out = api.output(pid);
    assertArrayEquals(pagesStdout(Integer.parseInt(PAGES.get(1))), out.stdout(), "stdout");
    assertArrayEquals(new byte[0], out.stderr(), "stderr");
    assertNoLocalCopy(n(to), pid);
  }

  @Test
  void aProcessFinishesAtItsDestinationWhenTheSourceDiesRightAfterTheCommit() {
    // n3 is the source: n1, the seed, stays up.
    NodeApi source = n(3).api();
    String pid = startLines(source, MORE_LINES);
    JsonNode m = source.migrateAndWait(pid, "n2");
    assertEquals("committed", m.path("state").asText(), "migration to n2: " + m);
    assertEquals("running", n(2).api().status(pid).path("state").asText());
    long killed = System.nanoTime();
    assertEquals(137, n(3).kill(), "exit code of the SIGKILLed source");

    // Until the cluster has downed n3, requests may wait: ask n2 with patience.
    NodeApi dest = n(2).api();
    JsonNode end = awaitFinalPatiently(dest, pid);
    log("source killed; the destination answered the end %d ms later", since(killed));
    assertEquals("exited", end.path("state").asText(), "at the destination: " + end);
    assertEquals("n2", end.path("node").asText(), "at the destination: " + end);
    assertEquals(0, end.path("exitCode").asInt(-1), "exit code: " + end);
    NodeApi.Output out = dest.output(pid);
    assertArrayEquals(Guests.linesStdout(MORE_LINES), out.stdout(), "stdout at the destination");
    assertArrayEquals(Guests.linesStderr(MORE_LINES, STDERR_EVERY), out.stderr(), "stderr");

    // The source, back on its data directory, does not bring its discarded copy back.
    restartKilledNodeAndAssertNoCopy("source", pid, "n2");
  }

  /**
   * The destination answers the last chunk (the source commits and discards its copy), then its
   * machine crashes before the record that the process runs there is on disk: it comes back with
   * the process stored durably but only as arrived. It must ask the source, learn that the
   * migration committed, and run the process: dropping it, as the node did before, lost it.
   */
  @Test
  void aProcessHandedOverJustBeforeItsDestinationCrashedRunsThereOnceItIsBack() {
    NodeApi api = n(1).api();
    // started once n3 is back with its failpoint (about 8 s of running, and a node's restart
    // takes 5-8 s here: started before it, it could end before the migration was asked)
    String[] started = new String[1];
    JsonNode m =
        haltingAt(
            n(3),
            "halt-after-answer",
            "destination",
            () -> {
              started[0] = startLines(api, LINES);
              return api.migrateAndWait(started[0], "n3");
            });
    String pid = started[0];
    assertEquals("committed", m.path("state").asText(), "the source had its answer: " + m);

    long restart = System.nanoTime();
    n(3).start();
    awaitMembersUp(n(3));
    JsonNode end = awaitFinalPatiently(api, pid);
    log(
        "the crashed destination ran the process to its end %d ms after its restart",
        since(restart));
    assertEndedAsIfUntouched(api, pid, end, "n3", LINES);
    assertListedOnceOn(pid, "n3", cluster);
  }

  /**
   * The destination crashes right after its answer (the source commits), and the source then leaves
   * the cluster for good: back, the destination holds the process in doubt, with nobody to ask. The
   * cluster lists the migration {@code in_doubt}; it cannot be cancelled; an operator commits it by
   * hand; the process then ends at the destination as if untouched, listed once.
   */
  @Test
  void aMigrationInDoubtWhoseSourceIsGoneIsCommittedByHandAndEndsAtItsDestination() {
    // n3 (interpreter) is the source, n2 the destination: n1, the seed, stays up.
    String[] started = new String[1];
    JsonNode m =
        haltingAt(
            n(2),
            "halt-after-answer",
            "destination",
            () -> {
              started[0] = startLines(n(3).api(), MORE_LINES);
              return n(1).api().migrateAndWait(started[0], "n2");
            });
    String pid = started[0];
    assertEquals("committed", m.path("state").asText(), "the source had its answer: " + m);
    String id = m.path("id").asText();
    n(3).stop(); // leaves the cluster: gone for good, as far as the destination can tell

    n(2).start();
    NodeApi api = n(1).api();
    api.awaitNodesUp(2, DOWNING_PATIENCE);
    JsonNode held = awaitMigrationState(api, id, "in_doubt");
    assertEquals("n2", held.path("toNode").asText(), "reported by the destination: " + held);
    assertTrue(held.path("error").asText().contains("waits for node n3"), "says why: " + held);
    NodeApi.Answer cancel = api.cancelMigration(id);
    assertRefused(cancel, 409, "a cancel of a migration in doubt");
    assertTrue(cancel.text().contains("is in doubt"), cancel.text());

    NodeApi.Answer a = api.post("/v1/migrations/" + id + "/commit");
    assertEquals(200, a.status(), a.text());
    assertEquals("committed", a.json().path("state").asText(), a.text());
    assertTrue(
        a.json().path("error").asText().contains("node n3 is not in the cluster"),
        "says by whom and why: " + a.text());
    NodeApi.Answer again = api.post("/v1/migrations/" + id + "/commit");
    assertRefused(again, 409, "a second commit by hand");
    assertTrue(again.text().contains("is committed, not in doubt"), again.text());
    assertEndedAsIfUntouched(api, pid, awaitFinalPatiently(api, pid), "n2", MORE_LINES);
    assertListedOnceOn(pid, "n2", List.of(n(1), n(2)));
  }

  /** Polls the migration's record until it is in {@code state}; returns it. */
  private static JsonNode awaitMigrationState(NodeApi api, String id, String state) {
    long deadline = System.nanoTime() + MIGRATION_TIMEOUT.toNanos();
    JsonNode last = null;
    while (System.nanoTime() < deadline) {
      NodeApi.Answer a = api.get("/v1/migrations/" + id);
      if (a.status() == 200) {
        last = a.json();
        if (last.path("state").asText().equals(state)) {
          return last;
        }
      }
      DaemonProcess.sleep(200);
    }
    throw new AssertionError("migration " + id + " never " + state + "; last: " + last);
  }

  /**
   * The destination stores the process durably, then crashes before it answers: the source gets no
   * answer, finds the process not running there, and resumes it. The destination, back, must ask
   * and drop its copy (not run it too); the process ends at the source as if untouched.
   */
  @Test
  void aProcessStoredByADestinationThatCrashedBeforeAnsweringRunsOnAtTheSource() {
    NodeApi api = n(1).api();
    int count = MORE_LINES;
    String pid = startLines(api, count);
    JsonNode m =
        haltingAt(n(3), "halt-before-answer", "destination", () -> api.migrateAndWait(pid, "n3"));
    assertEquals("aborted", m.path("state").asText(), "no answer, not running there: " + m);
    JsonNode status = api.status(pid);
    assertEquals("n1", status.path("node").asText(), "it runs on at the source: " + status);
    assertEquals("running", status.path("state").asText(), "it runs on at the source: " + status);

    n(3).start();
    awaitMembersUp(n(3));
    awaitLogLine(n(3), "did not commit at n1: what arrived here was dropped");
    assertListedOnceOn(pid, "n1", cluster);
    assertNoLocalCopy(n(3), pid);
    assertEndsAsIfUntouched(api, pid, "n1", count);
  }

  /**
   * data-segment sends the module ahead, before the freeze, to a destination without it: if the
   * destination dies then, the migration aborts before the process ever stood still, and it ends at
   * the source as if untouched. (files: a module no other test here moves to n3.)
   */
  @Test
  void aDestinationThatDiesWhileTheModuleGoesAheadLeavesTheProcessNeverFrozen() {
    NodeApi api = n(1).api();
    String files = api.upload(Guests.wasm("files"));
    String[] pid = new String[1];
    JsonNode m =
        haltingAt(
            n(3),
            "halt-on-module",
            "destination",
            () -> {
              pid[0] = api.run(files, List.of("10000"));
              api.awaitStatus(
                  pid[0], s -> s.path("stdoutBytes").asLong() > 0, "some output", RUN_TIMEOUT);
              return api.migrateAndWait(pid[0], "n3");
            });
    assertEquals("aborted", m.path("state").asText(), "the destination died: " + m);
    assertEquals(0, m.path("totalFreezeMicros").asLong(), "the process never froze: " + m);
    assertEquals(0, m.path("freezeMicros").asLong(), "the process never froze: " + m);
    assertTrue(m.path("error").asText().contains("module"), "says why: " + m);
    JsonNode end = api.awaitFinal(pid[0], RUN_TIMEOUT);
    assertEquals("exited", end.path("state").asText(), end.toString());
    assertEquals(0, end.path("exitCode").asInt(), end.toString());
    assertEquals("n1", end.path("node").asText(), "it ran on at the source: " + end);
    assertArrayEquals(Guests.filesStdout(10000), api.log(pid[0], "stdout"), "stdout");

    n(3).start();
    awaitMembersUp(n(3));
  }

  /**
   * The source dies mid-transfer (the destination hangs meanwhile): back on its data directory, it
   * records the migration aborted, keeps the process (without a checkpoint, as failed: a crash of
   * its node), and the destination holds no copy. The image is large (pages: 32 MiB), so that the
   * source is still sending when it dies: a small bundle would fit whole in the sockets' buffers,
   * and the destination, once it runs again, would take the process (as it must: see the test
   * above).
   */
  @Test
  void aSourceThatDiesDuringTheTransferRecordsTheMigrationAbortedWhenItIsBack() {
    NodeApi src = n(3).api();
    sourceKnowsTheModuleIsOn(src, src.run(pages, PAGES), "n2");
    String pid = src.run(pages, PAGES);
    src.awaitStatus(pid, s -> s.path("stdoutBytes").asLong() > 0, "some output", RUN_TIMEOUT);
    String id;
    try (NodeApi.EventStream events = n(1).api().events()) {
      n(2).pause();
      id = n(3).api().migrate(pid, "n2").path("id").asText();
      JsonNode during = awaitTransferring(events, id);
      assertEquals("transferring", during.path("state").asText(), "before the kill: " + during);
      assertEquals(137, n(3).kill(), "exit code of the SIGKILLed source");
    } finally {
      n(2).unpause();
    }
    n(3).start();
    awaitMembersUp(n(3));
    awaitLogLine(n(3), "stopped during the migration; the process stayed on it");
    JsonNode m = n(3).api().migration(id);
    assertEquals("aborted", m.path("state").asText(), "after the source's restart: " + m);
    assertTrue(m.path("error").asText().contains("stopped during the migration"), "says why: " + m);
    JsonNode status = n(1).api().status(pid);
    assertEquals("n3", status.path("node").asText(), "still the source's: " + status);
    assertEquals("failed", status.path("state").asText(), "no checkpoint to go on from: " + status);
    assertListedOnceOn(pid, "n3", cluster);
    assertNoLocalCopy(n(2), pid);
  }

  /**
   * The source dies as the destination's answer arrives, before it commits: the destination runs
   * the process. Back on its data directory, the source asks the destination, records the migration
   * committed and drops the copy its stop left behind: the process is listed once, at the
   * destination, and ends there as if untouched.
   */
  @Test
  void aSourceThatDiesOnTheAnswerLeavesTheProcessAtTheDestinationAndNoCopy() {
    record Started(String pid, String migrationId) {}
    Started s =
        haltingAt(
            n(3),
            "source-halt-on-answer",
            "source",
            () -> {
              String p = startLines(n(3).api(), MORE_LINES);
              return new Started(p, n(3).api().migrate(p, "n2").path("id").asText());
            });
    String pid = s.pid();
    String id = s.migrationId();
    n(3).start();
    awaitMembersUp(n(3));
    awaitLogLine(n(3), "took the process; the copy the stop left here was dropped");
    JsonNode m = n(1).api().migration(id);
    assertEquals("committed", m.path("state").asText(), "after the source's restart: " + m);
    assertEndedAsIfUntouched(
        n(1).api(), pid, awaitFinalPatiently(n(1).api(), pid), "n2", MORE_LINES);
    assertListedOnceOn(pid, "n2", cluster);
  }

  /**
   * Starts {@code node} again with the failpoint set, does {@code what}, and waits for the node
   * (the migration's {@code role}) to halt at the failpoint; the failpoint is cleared for its next
   * start. Returns what {@code what} returned.
   */
  private static <T> T haltingAt(
      DaemonProcess node, String failpoint, String role, java.util.function.Supplier<T> what) {
    try {
      node.stop();
      node.environment(Map.of("FERRY_TEST_FAILPOINT", failpoint));
      node.start();
      for (DaemonProcess n : cluster) {
        awaitMembersUp(n);
      }
      T result = what.get();
      assertEquals(137, node.awaitExit(Duration.ofSeconds(30)), "the " + role + " halted");
      return result;
    } finally {
      node.environment(Map.of());
    }
  }

  /** Waits until the node's log has a line containing {@code text}. */
  private static void awaitLogLine(DaemonProcess node, String text) {
    long deadline = System.nanoTime() + MIGRATION_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      try {
        if (java.nio.file.Files.readString(node.logFile(), StandardCharsets.ISO_8859_1)
            .contains(text)) {
          return;
        }
      } catch (java.io.IOException | java.io.UncheckedIOException e) {
        // not yet readable
      }
      DaemonProcess.sleep(200);
    }
    throw new AssertionError(node.name() + " never logged \"" + text + "\"\n" + node.logTail());
  }

  /**
   * Starts n3 again on its data directory (it was killed as the migration's {@code role}): it must
   * hold no copy of {@code pid}, which the cluster lists once, on {@code runsOn}.
   */
  private void restartKilledNodeAndAssertNoCopy(String role, String pid, String runsOn) {
    long restart = System.nanoTime();
    n(3).start();
    log("the killed %s answers again %d ms after its restart", role, since(restart));
    awaitMembersUp(n(3));
    assertListedOnceOn(pid, runsOn, cluster);
    assertNoLocalCopy(n(3), pid);
  }

  @Test
  void refusedMigrationRequestsChangeNothing() {
    NodeApi api = n(1).api();
    String pid = startLines(api, LINES);
    int before = migrationsOf(api, pid);

    assertRefused(api.requestMigration(pid, "n9", null, false), 404, "unknown node");
    assertRefused(api.requestMigration("p-nosuchprocess", "n2", null, false), 404, "no process");
    assertRefused(api.requestMigration(pid, "n1", null, false), 409, "the node it is on");
    assertRefused(api.requestMigration(pid, "n2", "teleport", false), 400, "unknown strategy");
    assertRefused(
        api.postJson(
            "/v1/processes/" + pid + "/migrations",
            NodeApi.parse("{\"to\": 2}".getBytes(StandardCharsets.UTF_8))),
        400,
        "a node name that is not a string");
    assertStillOn(api, pid, "n1");
    assertEquals(before, migrationsOf(api, pid), "refused requests leave no migration record");

    // A second migration while one is under way (n2 hangs, so the first one lasts until it
    // aborts, after the transfer-timeout).
    n(2).pause();
    String first;
    JsonNode held;
    try {
      first = api.migrate(pid, "n2").path("id").asText();
      assertRefused(n(3).api().requestMigration(pid, "n3", null, false), 409, "a second one");
      assertRefused(api.requestMigration(pid, "n2", null, true), 409, "the same one again");
      // A request for the process is held while it migrates, and answered once it has ended.
      held = api.status(pid);
    } finally {
      n(2).unpause(); // before the cluster takes the stopped node for dead (a few seconds)
    }
    JsonNode m = api.migration(first);
    assertEquals("aborted", m.path("state").asText(), "the first one, to a hung node: " + m);
    assertEquals("running", held.path("state").asText(), "held status: " + held);
    assertEquals("n1", held.path("node").asText(), "held status: " + held);
    assertStillOn(api, pid, "n1");
    assertEquals(before + 1, migrationsOf(api, pid), "only the first one is recorded");

    assertEquals("killed", api.kill(pid).path("state").asText(), "the process is stopped");
    assertRefused(api.requestMigration(pid, "n2", null, false), 409, "an ended process");
  }

  // ------------------------------------------------------------------ helpers

  /**
   * Makes the source know that node {@code to} has the module of {@code pid}, a process of the
   * source that is moved there (and killed). A source that does not know asks the destination
   * first, before the freeze, and sends the module ahead if need be; a test that hangs the
   * destination to catch a migration in its transfer would otherwise see it abort before it (the
   * source's question unanswered).
   */
  static void sourceKnowsTheModuleIsOn(NodeApi api, String pid, String to) {
    api.awaitStatus(pid, s -> s.path("stdoutBytes").asLong() > 0, "some output", RUN_TIMEOUT);
    JsonNode m = api.migrateAndWait(pid, to);
    assertEquals("committed", m.path("state").asText(), "moving a first process there: " + m);
    api.killIfRunning(pid);
  }

  /** The migration's record once its event says it is transferring (or has ended already). */
  static JsonNode awaitTransferring(NodeApi.EventStream events, String id) {
    return events.awaitMigration(
        id,
        m -> m.path("state").asText().equals("transferring") || NodeApi.hasEnded(m),
        "transferring",
        MIGRATION_TIMEOUT);
  }

  static void log(String format, Object... args) {
    System.out.println("[MigrationFaultTest] " + String.format(format, args));
  }

  static long since(long nanos) {
    return (System.nanoTime() - nanos) / 1_000_000;
  }

  /** Starts {@code lines} on the node of {@code api} and waits until it has written something. */
  static String startLines(NodeApi api, int count) {
    String pid =
        api.run(
            lines, List.of(Integer.toString(count), Integer.toString(STDERR_EVERY), "unbuffered"));
    api.awaitStatus(pid, s -> s.path("stdoutBytes").asLong() > 0, "some output", RUN_TIMEOUT);
    return pid;
  }

  /** The process ends on {@code node}, exit code 0, with the whole of lines' output, once. */
  static void assertEndsAsIfUntouched(NodeApi api, String pid, String node, int count) {
    assertEndedAsIfUntouched(api, pid, api.awaitFinal(pid, RUN_TIMEOUT), node, count);
  }

  /** {@code end} is lines' exit on {@code node}, code 0, after the whole of its output, once. */
  static void assertEndedAsIfUntouched(
      NodeApi api, String pid, JsonNode end, String node, int count) {
    assertEquals("exited", end.path("state").asText(), pid + ": " + end);
    assertEquals(node, end.path("node").asText(), pid + ": " + end);
    assertEquals(0, end.path("exitCode").asInt(-1), pid + ": " + end);
    NodeApi.Output out = api.output(pid);
    assertArrayEquals(Guests.linesStdout(count), out.stdout(), pid + ": stdout");
    assertArrayEquals(Guests.linesStderr(count, STDERR_EVERY), out.stderr(), pid + ": stderr");
  }

  /** stdout of {@code pages mib rounds dirty} (guests/src/pages.c). */
  static byte[] pagesStdout(int rounds) {
    StringBuilder b = new StringBuilder();
    for (int r = 0; r < rounds; r++) {
      b.append("round ").append(r).append('\n');
    }
    return b.append("pages ok\n").toString().getBytes(StandardCharsets.US_ASCII);
  }

  static void assertRefused(NodeApi.Answer a, int status, String what) {
    assertEquals(status, a.status(), what + ": " + a.request() + " answered " + a.text());
    JsonNode error = a.json().path("error");
    assertFalse(error.path("message").asText().isBlank(), what + ": " + a.text());
  }

  static void assertStillOn(NodeApi api, String pid, String node) {
    JsonNode s = api.status(pid);
    assertAll(
        "after the refusals: " + s,
        () -> assertEquals("running", s.path("state").asText()),
        () -> assertEquals(node, s.path("node").asText()));
  }

  static int migrationsOf(NodeApi api, String pid) {
    return (int) api.migrations().stream().filter(m -> m.path("pid").asText().equals(pid)).count();
  }

  /** Every node of {@code askers} lists {@code pid} exactly once, on {@code node}. */
  static void assertListedOnceOn(String pid, String node, List<DaemonProcess> askers) {
    for (DaemonProcess asker : askers) {
      List<JsonNode> listed =
          asker.api().list().stream().filter(p -> p.path("id").asText().equals(pid)).toList();
      assertEquals(1, listed.size(), asker.name() + " lists " + pid + " as " + listed);
      assertEquals(node, listed.get(0).path("node").asText(), asker.name() + ": " + listed);
    }
  }

  /** The node's own description of itself counts no process of that id as its own. */
  static void assertNoLocalCopy(DaemonProcess node, String pid) {
    for (JsonNode p : node.api().list()) {
      if (p.path("id").asText().equals(pid)) {
        assertNotEquals(node.name(), p.path("node").asText(), node.name() + " holds " + p);
      }
    }
  }

  /** {@code asker} lists the three members up, its listings asking each of them. */
  static void awaitMembersUp(DaemonProcess asker) {
    asker.api().awaitNodesUp(3, DOWNING_PATIENCE);
  }

  /**
   * Waits for the end of a process, asking again whatever the answer (an error, no answer) until
   * {@link #DOWNING_PATIENCE} has passed.
   */
  static JsonNode awaitFinalPatiently(NodeApi api, String pid) {
    long deadline = System.nanoTime() + DOWNING_PATIENCE.toNanos();
    String last = "nothing";
    while (System.nanoTime() < deadline) {
      try {
        NodeApi.Answer a = api.get("/v1/processes/" + pid + "/wait?timeout=10s");
        if (a.status() == 200) {
          return a.json();
        }
        last = a.status() + " " + a.text();
      } catch (AssertionError e) {
        last = e.getMessage();
      }
      DaemonProcess.sleep(200);
    }
    throw new AssertionError(
        pid + " did not end at " + api.base() + " within " + DOWNING_PATIENCE + "; last: " + last);
  }
}
