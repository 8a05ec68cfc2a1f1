package dev.ferry.node.cluster;

import static dev.ferry.node.cluster.InJvmClusterMigrationTest.awaitMigration;
import static dev.ferry.node.cluster.InJvmClusterMigrationTest.get;
import static dev.ferry.node.cluster.InJvmClusterMigrationTest.stdout;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.FerryNode;
import dev.ferry.node.TestNodes;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.RunRequest;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node whose store is full ({@code ferry.store.map-size} of n2 is the smallest allowed) loses
 * neither a process nor its output: a migration to it is aborted and the process runs on at its
 * source; a process of its own whose output fills it waits, and finishes on a node with room.
 */
class FullStoreMigrationTest {
  @TempDir static Path dir;
  static final List<FerryNode> nodes = new ArrayList<>();

  @BeforeAll
  static void startCluster() {
    startTwo(
        nodes,
        dir.resolve("n1"),
        dir.resolve("n2"),
        Map.of("ferry.node.engine", "compiled"),
        Map.of("ferry.store.map-size", "16MiB")); // the smallest allowed
  }

  /**
   * Starts n1 (the seed) and n2 on loopback with their data in these directories, adding each to
   * {@code started} as it starts (so that the caller stops what did): {@code both} are settings of
   * both, {@code n2Only} of n2.
   */
  static void startTwo(
      List<FerryNode> started,
      Path n1Data,
      Path n2Data,
      Map<String, Object> both,
      Map<String, Object> n2Only) {
    int seedPort = TestNodes.freePort();
    for (int i = 0; i < 2; i++) {
      Map<String, Object> extra = new HashMap<>(both);
      extra.put("ferry.node.name", "n" + (i + 1));
      extra.put("ferry.node.port", i == 0 ? seedPort : TestNodes.freePort());
      extra.put("ferry.node.seeds", List.of("127.0.0.1:" + seedPort));
      extra.put("ferry.http.port", TestNodes.freePort());
      if (i == 1) {
        extra.putAll(n2Only);
      }
      started.add(FerryNode.start(TestNodes.settings(i == 0 ? n1Data : n2Data, extra)));
    }
  }

  @AfterAll
  static void stopCluster() {
    for (int i = nodes.size() - 1; i >= 0; i--) {
      nodes.get(i).close();
    }
  }

  /**
   * The migration is aborted with an error that says so, the process runs on at its source and ends
   * with the output of an uninterrupted run, and the destination, its store left as it was, still
   * takes a process that fits.
   */
  @Test
  void anImageTheDestinationCannotStoreLeavesTheProcessRunningAtItsSource() throws Exception {
    ClusterService n1 = nodes.get(0).service();
    ClusterService n2 = nodes.get(1).service();
    // a 24000 KiB data area: more than a 16 MiB store can hold
    List<String> args = List.of("24000", "3000000");
    String hash = get(n1.uploadModule(TestNodes.guest("datasize"), false)).hash();
    ProcessInfo ref = get(n1.run(new RunRequest(hash, Engine.COMPILED, args, Map.of(), Map.of())));
    assertEquals(ProcessState.EXITED, get(n1.awaitExit(ref.id())).state());
    byte[] expected = stdout(n1, ref.id());

    ProcessInfo p = get(n1.run(new RunRequest(hash, null, args, Map.of(), Map.of())));
    Thread.sleep(300); // its pages written
    MigrationInfo m = awaitMigration(n1, get(n1.migrate(p.id(), "n2", null)).id());
    assertEquals("aborted", m.state(), m.toString());
    assertNotNull(m.error(), m.toString());
    assertTrue(
        m.error().contains("store full") && m.error().contains("ferry.store.map-size"),
        "the error should say the destination's store is full: " + m.error());
    // refused at its first chunk, not once n2 had stored 15 MiB of it
    assertTrue(m.error().contains("node n2 can take at most"), m.error());
    assertFalse(m.error().contains("Exception"), "said for an operator: " + m.error());
    ProcessInfo now = get(n2.status(p.id()));
    assertEquals("n1", now.node());
    assertTrue(
        now.state() == ProcessState.RUNNING || now.state() == ProcessState.EXITED, now.toString());

    ProcessInfo end = get(n1.awaitExit(p.id()));
    assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
    assertEquals(0, end.exitCode());
    assertArrayEquals(expected, stdout(n2, p.id()));

    // the destination's store was left as it was: a process of 8 MiB moves there
    ProcessInfo fits =
        get(n1.run(new RunRequest(hash, null, List.of("8000", "100000000"), Map.of(), Map.of())));
    Thread.sleep(300);
    MigrationInfo ok = awaitMigration(n1, get(n1.migrate(fits.id(), "n2", null)).id());
    assertEquals("committed", ok.state(), ok.toString());
    assertEquals("n2", get(n1.status(fits.id())).node());
    get(n1.kill(fits.id()));
  }

  /**
   * A process whose output the store of its node cannot hold is not failed: the output waits in
   * memory, then the process waits at its next write; migrated to a node with room it carries that
   * output along and ends there with the output of an uninterrupted run, not a byte lost.
   */
  @Test
  void aProcessWhoseOutputFillsItsNodesStoreWaitsAndFinishesElsewhere() throws Exception {
    outputFillsN2ThenTheProcessEndsOnN1(nodes.get(0).service(), nodes.get(1).service());
  }

  /**
   * The {@code lines} guest, run on n2 until its output fills what n2 can store and it waits, then
   * migrated to n1: it ends there with the stdout and stderr of an uninterrupted run on n1.
   */
  static void outputFillsN2ThenTheProcessEndsOnN1(ClusterService n1, ClusterService n2)
      throws Exception {
    // 400000 lines of 45 bytes, and a line on stderr every 1000: 18 MB, more than n2 can hold
    List<String> args = List.of("400000", "1000");
    String hash = get(n1.uploadModule(TestNodes.guest("lines"), false)).hash();
    ProcessInfo ref = get(n1.run(new RunRequest(hash, Engine.COMPILED, args, Map.of(), Map.of())));
    assertEquals(ProcessState.EXITED, get(n1.awaitExit(ref.id())).state());
    byte[] expected = stdout(n1, ref.id());
    byte[] expectedErr = InJvmClusterMigrationTest.stderr(n1, ref.id());

    get(n2.uploadModule(TestNodes.guest("lines"), false));
    List<dev.ferry.transport.proto.FerryEvent> events =
        new java.util.concurrent.CopyOnWriteArrayList<>();
    ProcessInfo p;
    try (ClusterService.Subscription sub = n1.subscribe(events::add)) {
      p = get(n2.run(new RunRequest(hash, Engine.COMPILED, args, Map.of(), Map.of())));
      // It fills what n2 can store, then stands still: its output no longer grows.
      long last = TestNodes.awaitOutputStops(n2::status, p.id());
      assertTrue(last < expected.length, "it wrote everything although n2 was full: " + last);
      // An operator sees why, from any node: its status says so, and so does the event stream.
      String held = get(n1.status(p.id())).outputHeld();
      assertTrue(
          held != null && held.contains("store refuses its output") && held.contains("waits at"),
          "status while it waits: " + held);
      long deadline = System.nanoTime() + 15_000_000_000L;
      while (events.stream().noneMatch(e -> isProcessEvent(e, p.id(), "output-held"))) {
        assertTrue(System.nanoTime() < deadline, "no output-held event reached n1: " + events);
        Thread.sleep(50);
      }
    }

    MigrationInfo m = awaitMigration(n2, get(n2.migrate(p.id(), "n1", null)).id());
    assertEquals("committed", m.state(), m.toString());
    ProcessInfo end = get(n1.awaitExit(p.id()));
    assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
    assertEquals(0, end.exitCode());
    assertEquals("n1", end.node());
    assertNull(end.outputHeld(), "n1 stores its output");
    assertArrayEquals(expected, stdout(n2, p.id()));
    assertArrayEquals(expectedErr, InJvmClusterMigrationTest.stderr(n2, p.id()));
  }

  static boolean isProcessEvent(dev.ferry.transport.proto.FerryEvent e, String pid, String what) {
    return e.hasProcessEvent()
        && e.getProcessEvent().getPid().equals(pid)
        && e.getProcessEvent().getWhat().equals(what);
  }
}
