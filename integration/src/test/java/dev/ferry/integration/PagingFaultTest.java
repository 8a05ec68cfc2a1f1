package dev.ferry.integration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Failures around paged processes between real node JVMs (n1, the seed, never stopped; n2; n3; all
 * on the compiled engine, whose speed the guest's run time is sized for; paging files with one
 * replica each): a replica's node dies before the process moves (the replica is re-made on the
 * other node and gfvm moves there); the source dies while post-copy still serves pages (the process
 * is lost, and says why); the source dies right after a gfvm move (the process goes on from its
 * replica, every page intact).
 */
@Timeout(240)
class PagingFaultTest {
  /**
   * A post-copy push of the 2 MiB process at 256 KiB/s takes about 8 s: time to kill its source.
   */
  @RegisterExtension
  static final NodeHarness nodes =
      new NodeHarness()
          .withNodeConfig(
              "ferry.strategies.gfvm.replication-factor = 2\n"
                  + "ferry.strategies.gfvm.flush-interval = 200ms\n"
                  + "ferry.strategies.gfvm.quiet-time = 400ms\n"
                  + "ferry.strategies.gfvm.transfer-timeout = 3s\n"
                  + "ferry.strategies.post-copy.push-bandwidth = 256KiB\n"
                  + "ferry.strategies.post-copy.transfer-timeout = 3s");

  /** The generations guest: every 4 KiB page of MiB mebibytes rewritten and checked each round. */
  static final String MIB = "2";

  /** About 25 s on a compiled node: it outlives a lost replica's downing and re-replication. */
  static final String ROUNDS = "12000";

  static final Duration TIMEOUT = Duration.ofSeconds(60);

  static List<DaemonProcess> cluster;
  static String generations;
  static byte[] expected;

  @BeforeAll
  static void startCluster() {
    cluster =
        nodes.startCluster(
            3, List.of("compiled", "compiled", "compiled"), List.of(JavaRuntime.current()));
    for (DaemonProcess n : cluster) {
      generations = n.api().upload(Guests.wasm("generations"));
    }
    NodeApi api = n(2).api();
    String ref = api.run(generations, List.of(MIB, ROUNDS));
    JsonNode end = api.awaitFinal(ref, Duration.ofSeconds(120));
    assertEquals(0, end.path("exitCode").asInt(-1), "reference run: " + end);
    expected = api.output(ref).stdout();
  }

  static DaemonProcess n(int number) {
    return cluster.get(number - 1);
  }

  @BeforeEach
  void wholeCluster() {
    for (DaemonProcess n : cluster) {
      if (!n.isAlive()) {
        n.start();
      }
    }
    for (DaemonProcess n : cluster) {
      MigrationFaultTest.awaitMembersUp(n);
    }
  }

  static String startPaged(NodeApi api) {
    return api.run(generations, List.of(MIB, ROUNDS), null, Map.of(), true);
  }

  /** The node holding an in-sync replica of pid's paging file, waiting for one. */
  static String awaitReplica(NodeApi api, String pid, String not) {
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    JsonNode s = null;
    while (System.nanoTime() < deadline) {
      s = api.status(pid);
      for (JsonNode r : s.path("paging").path("replicas")) {
        if (r.path("state").asText().equals("in-sync") && !r.path("node").asText().equals(not)) {
          return r.path("node").asText();
        }
      }
      DaemonProcess.sleep(100);
    }
    throw new AssertionError("no in-sync replica of " + pid + " (other than " + not + "): " + s);
  }

  static int number(String node) {
    return Integer.parseInt(node.substring(1));
  }

  /**
   * A long run of the generations guest (it would take minutes): it checks every page each round
   * and exits 3 naming a bad one, so its running on after the move, round after round, shows its
   * memory intact; it is then killed.
   */
  static final List<String> LONG = List.of(MIB, "10000000");

  @Test
  void aLostReplicaIsMadeAgainElsewhereAndGfvmMovesThere() {
    NodeApi api = n(1).api();
    String pid = api.run(generations, LONG, null, Map.of(), true);
    String replica = awaitReplica(api, pid, null);
    JsonNode lost;
    try (NodeApi.EventStream events = api.events()) {
      assertEquals(137, n(number(replica)).kill(), "exit code of the SIGKILLed replica holder");
      lost =
          events.await(
              e ->
                  e.path("kind").asText().equals("process")
                      && e.path("process").path("pid").asText().equals(pid)
                      && e.path("process").path("what").asText().equals("replica-lost"),
              "replica-lost",
              TIMEOUT);
    }
    assertTrue(lost.path("process").path("error").asText().contains(replica), lost.toString());
    String other = awaitReplica(api, pid, replica);
    assertNotEquals(replica, other);

    JsonNode m =
        api.requestMigration(pid, null, "gfvm", true).expect(200).json(); // gfvm picks the holder
    assertEquals("committed", m.path("state").asText(), m.toString());
    assertEquals(other, m.path("toNode").asText(), m.toString());
    NodeApi dest = n(number(other)).api();
    long at = dest.status(pid).path("stdoutBytes").asLong();
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    JsonNode now = dest.status(pid);
    while (now.path("stdoutBytes").asLong() < at + 2000 && System.nanoTime() < deadline) {
      DaemonProcess.sleep(100);
      now = dest.status(pid);
    }
    assertEquals("running", now.path("state").asText(), "runs on, every page intact: " + now);
    assertTrue(now.path("stdoutBytes").asLong() >= at + 2000, "it went on: " + now);
    assertEquals(0, now.path("stderrBytes").asLong(), "no page found wrong: " + now);
    dest.kill(pid);
  }

  @Test
  void postCopyLosesTheProcessIfItsSourceDiesBeforeThePushEndsAndSaysSo() {
    NodeApi source = n(3).api();
    String pid = startPaged(source);
    awaitReplica(source, pid, null);
    JsonNode during;
    try (NodeApi.EventStream events = source.events()) {
      String id =
          source
              .requestMigration(pid, "n2", "post-copy", false)
              .expect(202)
              .json()
              .path("id")
              .asText();
      during =
          events.awaitMigration(
              id,
              e -> e.path("state").asText().equals("restoring") || NodeApi.hasEnded(e),
              "restoring",
              TIMEOUT);
    }
    assertEquals("restoring", during.path("state").asText(), "the push is under way: " + during);
    assertEquals(137, n(3).kill(), "exit code of the SIGKILLed source");

    JsonNode end = MigrationFaultTest.awaitFinalPatiently(n(2).api(), pid);
    MigrationFaultTest.log("after post-copy lost its source: %s", end);
    assertEquals("failed", end.path("state").asText(), "the process is lost: " + end);
    String why = end.path("error").asText();
    assertTrue(why.contains("n3") && why.contains("post-copy"), "a clear reason: " + why);
  }

  @Test
  void aGfvmMoveSurvivesItsSourceDyingAtOnceTheProcessPagesInFromItsReplica() {
    NodeApi source = n(3).api();
    String pid = startPaged(source);
    String replica = awaitReplica(source, pid, null);
    JsonNode m = source.requestMigration(pid, replica, "gfvm", true).expect(200).json();
    assertEquals("committed", m.path("state").asText(), m.toString());
    assertEquals(137, n(3).kill(), "exit code of the SIGKILLed source");

    NodeApi dest = n(number(replica)).api();
    JsonNode end = MigrationFaultTest.awaitFinalPatiently(dest, pid);
    assertEquals("exited", end.path("state").asText(), "at the destination: " + end);
    assertEquals(0, end.path("exitCode").asInt(-1), end.toString());
    assertArrayEquals(expected, dest.output(pid).stdout(), "every page held its generation");
  }
}
