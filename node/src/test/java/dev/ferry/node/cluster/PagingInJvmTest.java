package dev.ferry.node.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.FerryNode;
import dev.ferry.node.TestNodes;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.PagingInfo;
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
 * The paging strategies between three nodes in one JVM (interpreter, compiled, interpreter), with
 * paging files replicated on one other node (replication-factor 2) and n3 as flushing's file
 * server: gfvm moves a paged process only to the node holding its replica, writing out only its
 * dirty pages, and pages in from there; pre-copy, post-copy and flushing move it too, and every
 * page of the generations guest holds what it must after each move.
 */
class PagingInJvmTest {
  @TempDir static Path dir;
  static final List<FerryNode> nodes = new ArrayList<>();

  @BeforeAll
  static void startCluster() {
    int seedPort = TestNodes.freePort();
    String[] engines = {"interpreter", "compiled", "interpreter"};
    for (int i = 0; i < 3; i++) {
      Map<String, Object> extra = new HashMap<>();
      extra.put("ferry.node.name", "n" + (i + 1));
      extra.put("ferry.node.engine", engines[i]);
      extra.put("ferry.node.port", i == 0 ? seedPort : TestNodes.freePort());
      extra.put("ferry.node.seeds", List.of("127.0.0.1:" + seedPort));
      extra.put("ferry.http.port", TestNodes.freePort());
      extra.put("ferry.strategies.gfvm.replication-factor", 2);
      extra.put("ferry.strategies.gfvm.flush-interval", "100ms");
      extra.put("ferry.strategies.gfvm.quiet-time", "200ms");
      extra.put("ferry.strategies.flushing.file-server", "n3");
      extra.put("ferry.strategies.pre-copy.max-rounds", 3);
      // n2 accepts a gfvm destination without a replica (a full copy); n1 and n3 refuse one.
      extra.put("ferry.strategies.gfvm.allow-full-copy", i == 1);
      nodes.add(FerryNode.start(TestNodes.settings(dir.resolve("n" + (i + 1)), extra)));
    }
    awaitEveryNodeSeesAll();
  }

  /** Until every node knows every other node's agent (each answers with its engine). */
  static void awaitEveryNodeSeesAll() {
    long deadline = System.currentTimeMillis() + 30_000;
    for (FerryNode n : nodes) {
      while (true) {
        try {
          if (get(n.service().nodes()).stream().filter(x -> x.engine() != null).count() == 3) {
            break;
          }
        } catch (Exception e) {
          // not yet
        }
        if (System.currentTimeMillis() > deadline) {
          throw new AssertionError("the three nodes did not see each other");
        }
        try {
          Thread.sleep(50);
        } catch (InterruptedException e) {
          throw new AssertionError(e);
        }
      }
    }
  }

  @AfterAll
  static void stopCluster() {
    for (int i = nodes.size() - 1; i >= 0; i--) {
      nodes.get(i).close();
    }
  }

  static <T> T get(java.util.concurrent.CompletionStage<T> s) throws Exception {
    return InJvmClusterMigrationTest.get(s);
  }

  /**
   * Waits until the process's paging file has an in-sync replica; returns its node, or null if the
   * process ended.
   */
  static String awaitReplica(ClusterService svc, String pid) throws Exception {
    long deadline = System.currentTimeMillis() + 30_000;
    while (true) {
      ProcessInfo p = get(svc.status(pid));
      if (p.state().isFinal()) {
        return null;
      }
      if (p.paging() != null) {
        for (PagingInfo.Replica r : p.paging().replicas()) {
          if (r.state().equals("in-sync")) {
            return r.node();
          }
        }
      }
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("no in-sync replica: " + p);
      }
      Thread.sleep(20);
    }
  }

  /** The stdout of an uninterrupted, flat run on the compiled engine. */
  static byte[] reference(
      ClusterService svc, String hash, List<String> args, Map<String, byte[]> files)
      throws Exception {
    ProcessInfo ref = get(svc.run(new RunRequest(hash, Engine.COMPILED, args, Map.of(), files)));
    get(svc.awaitExit(ref.id()));
    return InJvmClusterMigrationTest.stdout(svc, ref.id());
  }

  /** Asks for a migration; null if the request failed because the process had just ended. */
  static MigrationInfo migrateUnlessEnded(
      ClusterService asker, String pid, String to, String strategy) throws Exception {
    try {
      return get(asker.migrate(pid, to, strategy));
    } catch (java.util.concurrent.ExecutionException ex) {
      if (get(asker.status(pid)).state().isFinal()) {
        return null;
      }
      throw ex;
    }
  }

  /**
   * Moves the process, if it still runs, to n2 (compiled engine) with {@code strategy}, to run out
   * its rounds there: left on an interpreter node, the rest of a run long enough to outlast its
   * migrations on the compiled engine takes minutes (6000 rounds: 100-130 s under load).
   */
  static void finishOnTheCompiledNode(String pid, String strategy) throws Exception {
    ClusterService n2 = nodes.get(1).service();
    ProcessInfo now = get(n2.status(pid));
    if (now.state().isFinal() || now.node().equals("n2")) {
      return;
    }
    MigrationInfo m = migrateUnlessEnded(n2, pid, "n2", strategy);
    if (m != null) {
      MigrationInfo done = InJvmClusterMigrationTest.awaitMigration(n2, m.id());
      assertTrue(
          done.state().equals("committed") || get(n2.status(pid)).state().isFinal(),
          done.toString());
    }
  }

  /** It exited 0 with the reference's output, after at least five committed migrations. */
  static void assertEndedAsUninterrupted(
      String pid, String strategy, byte[] expected, int committed) throws Exception {
    finishOnTheCompiledNode(pid, strategy);
    ProcessInfo end = get(nodes.get(2).service().awaitExit(pid));
    assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
    assertEquals(0, end.exitCode());
    assertArrayEquals(expected, InJvmClusterMigrationTest.stdout(nodes.get(1).service(), pid));
    assertTrue(committed >= 5, "only " + committed + " migrations committed");
  }

  @Test
  void pagedProcessMovesBetweenReplicaHoldersWithEveryPageIntact() throws Exception {
    ClusterService n1 = nodes.get(0).service();
    String hash = get(n1.uploadModule(TestNodes.guest("generations"), false)).hash();
    List<String> args = List.of("2", "6000");
    byte[] expected = reference(n1, hash, args, Map.of());

    ProcessInfo p = get(n1.run(new RunRequest(hash, null, args, Map.of(), Map.of(), true)));
    assertNotNull(get(n1.status(p.id())).paging(), "a paged process shows its paging file");
    int committed = 0;
    for (int i = 0; i < 10; i++) {
      ClusterService asker = nodes.get(i % 3).service();
      ProcessInfo now = get(asker.status(p.id()));
      if (now.state().isFinal()) {
        break;
      }
      String holder = awaitReplica(asker, p.id());
      if (holder == null) {
        break;
      }
      // No --to: gfvm picks the replica holder.
      MigrationInfo m = migrateUnlessEnded(asker, p.id(), null, "gfvm");
      if (m == null) {
        break; // it finished between the status and the request
      }
      assertEquals(holder, m.toNode());
      MigrationInfo done = InJvmClusterMigrationTest.awaitMigration(asker, m.id());
      System.out.println("gfvm migration " + done);
      if (done.state().equals("committed")) {
        committed++;
        assertNotNull(done.pages());
        assertEquals(List.of(now.node()), done.pages().replicas(), "the source keeps a replica");
        assertTrue(
            done.pages().duringFreeze() <= done.pages().dirtyAtFreeze(), done.pages().toString());
        ProcessInfo there = get(asker.status(p.id()));
        if (!there.state().isFinal()) {
          assertEquals(holder, there.node());
          // It resumed on the replica: its pages come from the local copy of the paging file.
          assertNotNull(there.paging(), there.toString());
          assertTrue(there.paging().stored() > 0, there.paging().toString());
        }
      } else {
        assertTrue(get(asker.status(p.id())).state().isFinal(), done.toString());
      }
      Thread.sleep(30);
    }
    assertEndedAsUninterrupted(p.id(), "pre-copy", expected, committed);
  }

  /**
   * Pre-copy, post-copy and flushing: the generations guest (every 4 KiB page rewritten each round
   * and checked against the previous round) moved back and forth between n1 (interpreter) and n2
   * (compiled) mid-round, ten times, ends as an uninterrupted run does.
   */
  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.ValueSource(strings = {"pre-copy", "post-copy", "flushing"})
  void baselineStrategiesKeepEveryPageIntact(String strategy) throws Exception {
    ClusterService n1 = nodes.get(0).service();
    String hash = get(n1.uploadModule(TestNodes.guest("generations"), false)).hash();
    List<String> args = List.of("2", "6000");
    byte[] expected = reference(n1, hash, args, Map.of());

    ProcessInfo p = get(n1.run(new RunRequest(hash, null, args, Map.of(), Map.of(), true)));
    int committed = 0;
    for (int i = 0; i < 10; i++) {
      ClusterService asker = nodes.get(i % 3).service();
      ProcessInfo now = get(asker.status(p.id()));
      if (now.state().isFinal()) {
        break;
      }
      String to = now.node().equals("n1") ? "n2" : "n1";
      MigrationInfo m = migrateUnlessEnded(asker, p.id(), to, strategy);
      if (m == null) {
        break; // it finished between the status and the request
      }
      MigrationInfo done = InJvmClusterMigrationTest.awaitMigration(asker, m.id());
      System.out.println(strategy + " migration " + done);
      if (done.state().equals("committed")) {
        committed++;
        assertNotNull(done.pages(), done.toString());
        if (strategy.equals("pre-copy")) {
          assertTrue(done.pages().rounds() >= 1, done.toString());
          assertTrue(done.pages().beforeFreeze() > 0, done.toString());
        } else if (strategy.equals("post-copy")) {
          assertTrue(done.pages().afterFreeze() > 0, done.toString());
          assertNull(done.error(), done.toString());
        } else {
          assertEquals(List.of("n3"), done.pages().replicas(), done.toString());
        }
      } else {
        assertTrue(get(asker.status(p.id())).state().isFinal(), done.toString());
      }
    }
    assertEndedAsUninterrupted(p.id(), strategy, expected, committed);
  }

  /** The files workload (its sandbox moves with it) under post-copy, round-trip ten times. */
  @Test
  void filesUnderPostCopy() throws Exception {
    ClusterService n1 = nodes.get(0).service();
    String hash = get(n1.uploadModule(TestNodes.guest("files"), false)).hash();
    List<String> args = List.of("40000");
    Map<String, byte[]> files = Map.of("/in.txt", "input data\n".getBytes());
    byte[] expected = reference(n1, hash, args, files);
    ProcessInfo p = get(n1.run(new RunRequest(hash, null, args, Map.of(), files, true)));
    for (int i = 0; i < 10; i++) {
      ProcessInfo now = get(n1.status(p.id()));
      if (now.state().isFinal()) {
        break;
      }
      String to = now.node().equals("n1") ? "n2" : "n1";
      MigrationInfo m = migrateUnlessEnded(n1, p.id(), to, "post-copy");
      if (m == null) {
        break; // it finished between the status and the request
      }
      MigrationInfo done = InJvmClusterMigrationTest.awaitMigration(n1, m.id());
      System.out.println("files post-copy " + done);
    }
    ProcessInfo end = get(n1.awaitExit(p.id()));
    assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
    assertEquals(0, end.exitCode(), end.toString());
    assertArrayEquals(expected, InJvmClusterMigrationTest.stdout(n1, p.id()));
  }

  /**
   * With allow-full-copy (n2), gfvm moves a paged process to a node that holds no replica: the
   * whole paging file goes there during the freeze, and the replica set stays at its size.
   */
  @Test
  void gfvmWithAllowFullCopyMovesToANodeWithoutAReplica() throws Exception {
    ClusterService n2 = nodes.get(1).service();
    String hash = get(n2.uploadModule(TestNodes.guest("generations"), false)).hash();
    List<String> args = List.of("2", "3000");
    byte[] expected = reference(n2, hash, args, Map.of());

    ProcessInfo p = get(n2.run(new RunRequest(hash, null, args, Map.of(), Map.of(), true)));
    String holder = awaitReplica(n2, p.id());
    String other = holder.equals("n1") ? "n3" : "n1";
    MigrationInfo m =
        InJvmClusterMigrationTest.awaitMigration(n2, get(n2.migrate(p.id(), other, "gfvm")).id());
    assertEquals("committed", m.state(), m.toString());
    assertEquals(other, m.toNode());
    assertTrue(
        m.pages().duringFreeze() > m.pages().dirtyAtFreeze(),
        "the whole file moved, not only the dirty pages: " + m.pages());
    assertEquals(1, m.pages().replicas().size(), "still one replica: " + m.pages());
    finishOnTheCompiledNode(p.id(), "pre-copy");
    ProcessInfo end = get(n2.awaitExit(p.id()));
    assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
    assertEquals(0, end.exitCode());
    assertArrayEquals(expected, InJvmClusterMigrationTest.stdout(n2, p.id()));
  }

  @Test
  void gfvmRefusesFlatProcessesAndNodesWithoutAReplicaAndChangesNothing() throws Exception {
    ClusterService n1 = nodes.get(0).service();
    String hash = get(n1.uploadModule(TestNodes.guest("clock"), false)).hash();
    ProcessInfo flat =
        get(n1.run(new RunRequest(hash, null, List.of("100000", "1000"), Map.of(), Map.of())));
    assertNull(get(n1.status(flat.id())).paging());
    FerryException e =
        FerryException.of(
            assertThrows(Exception.class, () -> get(n1.migrate(flat.id(), "n2", "gfvm"))));
    assertEquals(FerryException.Kind.CONFLICT, e.kind(), e.getMessage());
    assertTrue(e.getMessage().contains("paged"), e.getMessage());
    e =
        FerryException.of(
            assertThrows(Exception.class, () -> get(n1.migrate(flat.id(), null, "gfvm"))));
    assertTrue(e.getMessage().contains("paged"), e.getMessage());

    ProcessInfo paged =
        get(
            n1.run(
                new RunRequest(hash, null, List.of("100000", "1000"), Map.of(), Map.of(), true)));
    String holder = awaitReplica(n1, paged.id());
    String other = holder.equals("n2") ? "n3" : "n2";
    e =
        FerryException.of(
            assertThrows(Exception.class, () -> get(n1.migrate(paged.id(), other, "gfvm"))));
    assertEquals(FerryException.Kind.CONFLICT, e.kind(), e.getMessage());
    assertTrue(e.getMessage().contains("holds no replica"), e.getMessage());
    assertTrue(get(n1.migrations()).stream().noneMatch(m -> m.pid().equals(paged.id())));
    assertEquals(ProcessState.RUNNING, get(n1.status(paged.id())).state());
    assertEquals("n1", get(n1.status(paged.id())).node());
    get(n1.kill(flat.id()));
    get(n1.kill(paged.id()));
  }
}
