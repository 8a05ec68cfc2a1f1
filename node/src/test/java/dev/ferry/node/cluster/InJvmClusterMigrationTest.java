package dev.ferry.node.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.FerryNode;
import dev.ferry.node.TestNodes;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.RunRequest;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three nodes in one JVM (three actor systems, three stores, on loopback): a process migrated
 * round-robin between them, across engines, finishes with the output of an uninterrupted run. The
 * same behaviour between separate node JVMs is tested in the integration module.
 */
class InJvmClusterMigrationTest {
  @TempDir static Path dir;
  static final List<FerryNode> nodes = new ArrayList<>();

  static <T> T get(CompletionStage<T> s) throws Exception {
    return s.toCompletableFuture().get(120, TimeUnit.SECONDS);
  }

  @BeforeAll
  static void startCluster() {
    int seedPort = TestNodes.freePort();
    String[] engines = {"interpreter", "compiled", "interpreter"};
    for (int i = 0; i < 3; i++) {
      Map<String, Object> extra = new java.util.HashMap<>();
      extra.put("ferry.node.name", "n" + (i + 1));
      extra.put("ferry.node.engine", engines[i]);
      extra.put("ferry.node.port", i == 0 ? seedPort : TestNodes.freePort());
      extra.put("ferry.node.seeds", List.of("127.0.0.1:" + seedPort));
      extra.put("ferry.http.port", TestNodes.freePort());
      nodes.add(FerryNode.start(TestNodes.settings(dir.resolve("n" + (i + 1)), extra)));
    }
  }

  @AfterAll
  static void stopCluster() {
    for (int i = nodes.size() - 1; i >= 0; i--) {
      nodes.get(i).close();
    }
  }

  static byte[] stdout(ClusterService svc, String pid) throws Exception {
    return log(svc, pid, LogStream.STDOUT);
  }

  static byte[] stderr(ClusterService svc, String pid) throws Exception {
    return log(svc, pid, LogStream.STDERR);
  }

  private static byte[] log(ClusterService svc, String pid, LogStream stream) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    long off = 0;
    while (true) {
      LogChunk c = get(svc.readLog(pid, stream, off, 1 << 20, Duration.ZERO));
      if (c.data().length == 0) {
        return out.toByteArray();
      }
      out.writeBytes(c.data());
      off = c.nextOffset();
    }
  }

  /** Starts the clock guest (uploaded first) on {@code svc}'s node: {@code iterations} ticks. */
  static ProcessInfo runClock(ClusterService svc, String iterations) throws Exception {
    String hash = get(svc.uploadModule(TestNodes.guest("clock"), false)).hash();
    return get(
        svc.run(new RunRequest(hash, null, List.of(iterations, "1000"), Map.of(), Map.of())));
  }

  static MigrationInfo awaitMigration(ClusterService svc, String id) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    while (true) {
      MigrationInfo m = get(svc.migration(id));
      if (List.of("committed", "aborted", "cancelled").contains(m.state())) {
        return m;
      }
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("migration " + id + " still " + m.state());
      }
      Thread.sleep(5);
    }
  }

  @Test
  void processMigratedRoundRobinFinishesWithIdenticalOutput() throws Exception {
    // datasize: linear cost, so it outlives ten migrations on any mix of engines (churn, whose
    // cost grows faster than its step count, is migrated between separate JVMs in integration).
    migrateRoundRobin("datasize", List.of("50", "20000000"));
  }

  /**
   * The generations guest (guests/README.md) writes a generation number into every 4 KiB page of 2
   * MiB, round after round, and checks every page against the previous generation as it goes:
   * migrated mid-round across nodes and engines, it must find every page as it left it.
   */
  @Test
  void everyPageHoldsItsGenerationAfterMigrationsMidRound() throws Exception {
    migrateRoundRobin("generations", List.of("2", "5000"));
  }

  private void migrateRoundRobin(String guest, List<String> args) throws Exception {
    ClusterService n1 = nodes.get(0).service();
    assertEquals(3, get(n1.nodes()).size());
    String hash = get(n1.uploadModule(TestNodes.guest(guest), false)).hash();
    ProcessInfo ref = get(n1.run(new RunRequest(hash, Engine.COMPILED, args, Map.of(), Map.of())));
    get(n1.awaitExit(ref.id()));
    byte[] expected = stdout(n1, ref.id());

    ProcessInfo p = get(n1.run(new RunRequest(hash, null, args, Map.of(), Map.of())));
    int committed = 0;
    for (int i = 0; i < 10; i++) {
      ClusterService asker = nodes.get(i % 3).service(); // any node can be asked
      ProcessInfo now = get(asker.status(p.id()));
      if (now.state().isFinal()) {
        break;
      }
      String to = "n" + ((Integer.parseInt(now.node().substring(1)) % 3) + 1);
      MigrationInfo m;
      try {
        m = get(asker.migrate(p.id(), to, null));
      } catch (java.util.concurrent.ExecutionException ex) {
        if (get(asker.status(p.id())).state().isFinal()) {
          break; // it finished between the status and the request
        }
        throw ex;
      }
      MigrationInfo done = awaitMigration(asker, m.id());
      System.out.println("migration " + done);
      if (done.state().equals("committed")) {
        committed++;
        assertEquals(to, get(asker.status(p.id())).node());
        // the source's sandbox is out of the way at once (deleted in the background)
        assertTrue(
            !java.nio.file.Files.exists(
                dir.resolve(done.fromNode()).resolve("sandboxes").resolve(p.id())),
            "the sandbox of " + p.id() + " is still on " + done.fromNode());
      } else {
        assertTrue(
            get(asker.status(p.id())).state().isFinal() || done.error() != null, done.toString());
      }
      Thread.sleep(30);
    }
    ProcessInfo end = get(nodes.get(2).service().awaitExit(p.id()));
    assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
    assertEquals(0, end.exitCode());
    assertArrayEquals(expected, stdout(nodes.get(1).service(), p.id()));
    assertTrue(committed >= 5, "only " + committed + " migrations committed");
    assertTrue(get(n1.list()).stream().anyMatch(x -> x.id().equals(p.id())));
    // and the discarded sandboxes are deleted, soon
    long deadline = System.currentTimeMillis() + 10_000;
    List<Path> left;
    do {
      left = new ArrayList<>();
      for (int i = 1; i <= 3; i++) {
        Path sandboxes = dir.resolve("n" + i).resolve("sandboxes");
        if (java.nio.file.Files.isDirectory(sandboxes)) {
          try (var d = java.nio.file.Files.list(sandboxes)) {
            d.filter(x -> x.getFileName().toString().startsWith(".discarded-")).forEach(left::add);
          }
        }
      }
    } while (!left.isEmpty() && System.currentTimeMillis() < deadline && sleep(50));
    assertTrue(left.isEmpty(), "discarded sandboxes still there: " + left);
  }

  private static boolean sleep(long millis) throws InterruptedException {
    Thread.sleep(millis);
    return true;
  }

  @Test
  void everyNodeSeesTheClusterWideEventsOfOtherNodes() throws Exception {
    java.util.concurrent.BlockingQueue<dev.ferry.transport.proto.FerryEvent> seen =
        new java.util.concurrent.LinkedBlockingQueue<>();
    ClusterService n3 = nodes.get(2).service();
    try (ClusterService.Subscription sub = n3.subscribe(seen::add)) {
      ClusterService n1 = nodes.get(0).service();
      String hash = get(n1.uploadModule(TestNodes.guest("clock"), false)).hash();
      // The subscription spreads through the cluster (the receptionist's gossip): wait until an
      // event published on n1 reaches n3, then start listening for real.
      long spread = System.currentTimeMillis() + 15_000;
      boolean reached = false;
      while (!reached && System.currentTimeMillis() < spread) {
        ProcessInfo probe =
            get(n1.run(new RunRequest(hash, null, List.of("1", "1"), Map.of(), Map.of())));
        long until = System.currentTimeMillis() + 1_000;
        while (!reached && System.currentTimeMillis() < until) {
          var e = seen.poll(100, TimeUnit.MILLISECONDS);
          reached =
              e != null && e.hasProcessEvent() && e.getProcessEvent().getPid().equals(probe.id());
        }
      }
      assertTrue(reached, "no event of n1 reached a subscriber on n3 within 15 s");
      seen.clear();
      ProcessInfo p =
          get(n1.run(new RunRequest(hash, null, List.of("100000", "1000"), Map.of(), Map.of())));
      MigrationInfo m = awaitMigration(n1, get(n1.migrate(p.id(), "n2", null)).id());
      assertEquals("committed", m.state());
      get(n1.kill(p.id()));
      List<String> kinds = new ArrayList<>();
      long deadline = System.currentTimeMillis() + 10_000;
      while (!(kinds.contains("process:started")
              && kinds.contains("migration:COMMITTED")
              && kinds.contains("process:killed"))
          && System.currentTimeMillis() < deadline) {
        var e = seen.poll(200, TimeUnit.MILLISECONDS);
        if (e == null) {
          continue;
        }
        if (e.hasProcessEvent() && e.getProcessEvent().getPid().equals(p.id())) {
          kinds.add("process:" + e.getProcessEvent().getWhat());
          assertTrue(List.of("n1", "n2").contains(e.getNode()), e.toString());
        } else if (e.hasMigration() && e.getMigration().getId().equals(m.id())) {
          kinds.add("migration:" + e.getMigration().getState().name());
          assertEquals("n1", e.getNode());
        }
      }
      assertTrue(kinds.contains("process:started"), kinds.toString());
      assertTrue(kinds.contains("migration:COMMITTED"), kinds.toString());
      assertTrue(kinds.contains("process:killed"), kinds.toString());
      assertEquals(
          1, kinds.stream().filter(k -> k.equals("migration:COMMITTED")).count(), kinds.toString());
    }
  }

  /**
   * A request that changes a process, asked right as a migration ends, reaches the process: Pekko's
   * shard regions drop the requests they hold for a shard that starts moving (the shard follows the
   * process at the end of every migration), so the request is sent again — and carried out once.
   */
  @Test
  void changesAskedAsTheShardMovesAreNotLost() throws Exception {
    ClusterService n1 = nodes.get(0).service();
    ProcessInfo p = runClock(n1, "2000000");
    int asked = 0;
    for (int round = 0; round < 8; round++) {
      String from = get(n1.status(p.id())).node();
      String to = from.equals("n1") ? "n2" : "n1";
      ClusterService source = nodes.get(Integer.parseInt(from.substring(1)) - 1).service();
      MigrationInfo m = awaitMigration(source, get(source.migrate(p.id(), to, null)).id());
      assertEquals("committed", m.state(), m.toString());
      // From the source, where the shard is until it follows: checkpoints (the process runs on)
      // for the next 200 ms, while the shard moves (within 50 ms of the commit, at the next
      // rebalance). Each must answer at once or after one repetition, not at the ask timeout.
      List<java.util.concurrent.CompletableFuture<dev.ferry.node.service.CheckpointResult>> cps =
          new ArrayList<>();
      long until = System.nanoTime() + 200_000_000L;
      while (System.nanoTime() < until) {
        cps.add(source.checkpoint(p.id(), true).toCompletableFuture());
        Thread.sleep(2);
      }
      for (var cp : cps) {
        // answered: a checkpoint, or (asked while another one freezes it) a clear refusal
        try {
          assertTrue(cp.get(20, TimeUnit.SECONDS).leftRunning());
        } catch (java.util.concurrent.ExecutionException e) {
          FerryException fe = FerryException.of(e);
          assertEquals(FerryException.Kind.CONFLICT, fe.kind(), fe.getMessage());
          assertTrue(fe.getMessage().contains("already being frozen"), fe.getMessage());
        }
        asked++;
      }
    }
    System.out.println(asked + " checkpoints asked as shards moved, all answered");
    assertEquals(ProcessState.RUNNING, get(n1.status(p.id())).state());
    get(n1.kill(p.id()));
  }

  /** A request that reaches a node twice (the same request id) is carried out once. */
  @Test
  void aRequestSentTwiceIsCarriedOutOnce() throws Exception {
    ClusterService n1 = nodes.get(0).service();
    var sharding =
        org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding.get(nodes.get(1).system());
    var resolver = org.apache.pekko.actor.typed.ActorRefResolver.get(nodes.get(1).system());
    java.util.function.BiFunction<String, String, dev.ferry.transport.proto.ProcessReply> kill =
        (pid, requestId) -> {
          try {
            return get(
                sharding
                    .entityRefFor(ClusterRuntime.PROCESS, pid)
                    .<dev.ferry.transport.proto.ProcessReply>ask(
                        replyTo ->
                            dev.ferry.transport.proto.ProcessCommand.newBuilder()
                                .setPid(pid)
                                .setReplyTo(resolver.toSerializationFormat(replyTo))
                                .setRequestId(requestId)
                                .setKill(dev.ferry.transport.proto.Empty.getDefaultInstance())
                                .build(),
                        Duration.ofSeconds(30)));
          } catch (Exception e) {
            throw new AssertionError(e);
          }
        };
    ProcessInfo p = runClock(n1, "100000");
    var first = kill.apply(p.id(), "kill-1");
    var again = kill.apply(p.id(), "kill-1");
    assertTrue(first.hasInfo(), first.toString());
    assertEquals(first, again); // the same answer: the process was killed once
    var other = kill.apply(p.id(), "kill-2"); // a different request: carried out, refused
    assertTrue(other.hasError(), other.toString());
    assertTrue(other.getError().getMessage().contains("already ended"), other.toString());
    assertEquals(ProcessState.KILLED, get(n1.status(p.id())).state());
  }

  @Test
  void badMigrationRequestsFailClearlyAndChangeNothing() throws Exception {
    ClusterService n1 = nodes.get(0).service();
    ProcessInfo p = runClock(n1, "100000");
    FerryException e =
        FerryException.of(assertThrows(Exception.class, () -> get(n1.migrate(p.id(), "n9", null))));
    assertEquals(FerryException.Kind.NOT_FOUND, e.kind(), e.getMessage());
    e = FerryException.of(assertThrows(Exception.class, () -> get(n1.migrate(p.id(), "n1", null))));
    assertEquals(FerryException.Kind.CONFLICT, e.kind(), e.getMessage());
    e =
        FerryException.of(
            assertThrows(Exception.class, () -> get(n1.migrate("p-none", "n2", null))));
    assertEquals(FerryException.Kind.NOT_FOUND, e.kind(), e.getMessage());
    e =
        FerryException.of(
            assertThrows(Exception.class, () -> get(n1.migrate(p.id(), "n2", "teleport"))));
    assertEquals(FerryException.Kind.BAD_REQUEST, e.kind(), e.getMessage());
    assertEquals(ProcessState.RUNNING, get(n1.status(p.id())).state());
    assertEquals("n1", get(n1.status(p.id())).node());
    get(n1.kill(p.id()));
  }
}
