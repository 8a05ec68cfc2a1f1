package dev.ferry.node;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.config.FerrySettings;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.RunRequest;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node the cluster removes (downed, as the split-brain resolver does to a node that was
 * unreachable too long) does not go on as a zombie: it checkpoints its processes and closes itself,
 * and when it is started again it rejoins and they finish with the output of an uninterrupted run.
 */
class NodeRemovedTest {
  @TempDir Path dir;
  private final List<FerryNode> started = new ArrayList<>();

  @AfterEach
  void stopAll() {
    for (int i = started.size() - 1; i >= 0; i--) {
      started.get(i).close();
    }
  }

  private FerryNode start(FerrySettings s) {
    FerryNode n = FerryNode.start(s);
    started.add(n);
    return n;
  }

  @Test
  void aDownedNodeCheckpointsItsProcessesAndStopsThenResumesThemWhenStartedAgain()
      throws Exception {
    Two two = startTwo();
    FerryNode n1 = two.n1();
    FerryNode n2 = two.n2();
    FerrySettings s2 = two.s2();
    ClusterService svc1 = n1.service();
    ProcessInfo ref =
        NodeRestartTest.get(
            svc1.run(new RunRequest(two.hash(), Engine.COMPILED, ARGS, Map.of(), Map.of())));
    NodeRestartTest.get(svc1.awaitExit(ref.id()));
    byte[] expected = NodeRestartTest.stdout(svc1, ref.id());

    ClusterService svc2 = n2.service();
    String pid = two.runOnN2();
    while (NodeRestartTest.get(svc2.status(pid)).stdoutBytes() < expected.length / 3) {
      Thread.sleep(5);
    }

    Cluster.get(n1.system())
        .manager()
        .tell(new Down(Cluster.get(n2.system()).selfMember().address()));
    String why = n2.removedFromCluster().toCompletableFuture().get(60, TimeUnit.SECONDS);
    assertTrue(why.contains("n2 was removed from the cluster"), why);
    assertTrue(n2.system().getWhenTerminated().toCompletableFuture().isDone());
    started.remove(n2);
    n2.close(); // (already closed by itself: nothing more happens)
    // its process is not lost: asked for it, n1 says where it is (at once, not at a timeout)
    long asked = System.nanoTime();
    var gone =
        dev.ferry.node.service.FerryException.of(
            org.junit.jupiter.api.Assertions.assertThrows(
                Exception.class, () -> NodeRestartTest.get(svc1.status(pid))));
    assertTrue(gone instanceof dev.ferry.node.service.FerryException.NodeGone, gone.toString());
    assertTrue(
        gone.getMessage().contains("is on node n2, which is not in the cluster"),
        gone.getMessage());
    // (from n1's own copy of the placements: through sharding it took 5.5 s, the coordinator
    // waiting to store a new placement with the downed n2 still counted)
    long tookMs = (System.nanoTime() - asked) / 1_000_000;
    assertTrue(tookMs < 3000, "answered after " + tookMs + " ms");
    // the process stood still at its checkpoint: no process of n2 is listed as running anywhere
    assertFalse(
        NodeRestartTest.get(svc1.list()).stream().anyMatch(p -> p.id().equals(pid)),
        "a process of the removed node is still listed");

    FerryNode again = start(s2); // rejoins; its checkpointed process resumes
    ProcessInfo end = NodeRestartTest.get(svc1.awaitExit(pid));
    assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
    assertEquals(0, end.exitCode());
    assertEquals("n2", end.node());
    assertArrayEquals(expected, NodeRestartTest.stdout(svc1, pid));
    assertEquals(2, NodeRestartTest.get(again.service().nodes()).size());
  }

  /**
   * A node removed right after it started a process: the others still know where the process is
   * (its placement reached them before the start was reported), so they say it is on that node, not
   * that there is no such process.
   */
  @Test
  void aProcessStartedJustBeforeItsNodeWasRemovedIsStillKnownToTheOthers() throws Exception {
    Two two = startTwo();
    FerryNode n1 = two.n1();
    FerryNode n2 = two.n2();
    String pid = two.runOnN2();
    Cluster.get(n1.system())
        .manager()
        .tell(new Down(Cluster.get(n2.system()).selfMember().address()));
    n2.removedFromCluster().toCompletableFuture().get(60, TimeUnit.SECONDS);
    started.remove(n2);
    n2.close();
    var gone =
        dev.ferry.node.service.FerryException.of(
            org.junit.jupiter.api.Assertions.assertThrows(
                Exception.class, () -> NodeRestartTest.get(n1.service().status(pid))));
    // (named by its address if n1 had not yet heard its name: it left within moments)
    String n2Address = Cluster.get(n2.system()).selfMember().address().hostPort();
    assertTrue(
        gone instanceof dev.ferry.node.service.FerryException.NodeGone
            && (gone.getMessage().contains("is on node n2,")
                || gone.getMessage().contains("is on node " + n2Address + ",")),
        gone.toString());
  }

  /** The lines guest's arguments: long enough to be running when its node is removed. */
  private static final List<String> ARGS = List.of("30000", "1000", "unbuffered");

  /** Two started nodes (n1 the seed), n2's settings, and the lines guest on both. */
  private record Two(FerryNode n1, FerryNode n2, FerrySettings s2, String hash) {
    /** The lines guest started on n2 (interpreter): its process id. */
    String runOnN2() throws Exception {
      return NodeRestartTest.get(
              n2.service().run(new RunRequest(hash, Engine.INTERPRETER, ARGS, Map.of(), Map.of())))
          .id();
    }
  }

  private Two startTwo() throws Exception {
    int seedPort = TestNodes.freePort();
    FerrySettings s2 = settings("n2", TestNodes.freePort(), seedPort);
    FerryNode n1 = start(settings("n1", seedPort, seedPort));
    FerryNode n2 = start(s2);
    String hash = null;
    for (FerryNode n : List.of(n1, n2)) {
      hash = NodeRestartTest.get(n.service().uploadModule(TestNodes.guest("lines"), false)).hash();
    }
    return new Two(n1, n2, s2, hash);
  }

  private FerrySettings settings(String name, int port, int seedPort) {
    Map<String, Object> extra = new HashMap<>();
    extra.put("ferry.node.name", name);
    extra.put("ferry.node.port", port);
    extra.put("ferry.node.seeds", List.of("127.0.0.1:" + seedPort));
    extra.put("ferry.http.port", TestNodes.freePort());
    return TestNodes.settings(dir.resolve(name), extra);
  }
}
