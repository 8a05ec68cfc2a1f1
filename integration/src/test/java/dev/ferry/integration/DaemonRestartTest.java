package dev.ferry.integration;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A daemon stopped with SIGTERM while it runs programs checkpoints them, exits 0, and resumes them
 * when it starts again on the same data directory; they end as if never interrupted.
 */
class DaemonRestartTest {
  @RegisterExtension static final NodeHarness nodes = new NodeHarness();

  static final List<String> LINES = List.of("30000", "1000", "unbuffered");
  static final List<String> CHURN = List.of("150", "2000");
  static final Duration RUN_TIMEOUT = Duration.ofSeconds(90);

  @Test
  @Timeout(240)
  void runningProcessesSurviveSigtermAndRestart() {
    DaemonProcess node = nodes.start("interpreter");
    NodeApi api = node.api();
    String lines = api.upload(Guests.wasm("lines"));
    String churn = api.upload(Guests.wasm("churn"));

    // Reference runs on the same daemon, uninterrupted.
    NodeApi.Output linesRef = runToEnd(api, lines, LINES);
    NodeApi.Output churnRef = runToEnd(api, churn, CHURN);
    assertArrayEquals(Guests.linesStdout(30000), linesRef.stdout(), "reference stdout of lines");
    assertArrayEquals(
        Guests.linesStderr(30000, 1000), linesRef.stderr(), "reference stderr of lines");
    assertTrue(
        churnRef.stdoutText().startsWith("step 0 checksum ")
            && churnRef.stdoutText().contains("\ndone "),
        "reference output of churn: " + churnRef.stdoutText());

    // A process the user checkpoints (stopped) before the restart.
    String parked = api.run(lines, LINES);
    api.awaitStatus(parked, s -> s.path("stdoutBytes").asLong() > 0, "some output", RUN_TIMEOUT);
    api.checkpoint(parked, false);
    assertEquals("checkpointed", api.state(parked));

    // Two processes running when SIGTERM comes, each about a third through its output.
    long churnTotal = churnRef.stdout().length;
    long linesTotal = linesRef.stdout().length;
    String churnPid = api.run(churn, CHURN);
    api.awaitStatus(
        churnPid,
        s -> s.path("stdoutBytes").asLong() >= churnTotal / 4,
        "a quarter of its output",
        RUN_TIMEOUT);
    String linesPid = api.run(lines, LINES);
    api.awaitStatus(
        linesPid,
        s -> s.path("stdoutBytes").asLong() >= linesTotal / 3,
        "a third of its output",
        RUN_TIMEOUT);
    JsonNode churnBefore = api.status(churnPid);
    JsonNode linesBefore = api.status(linesPid);

    int exit = node.stop();

    assertAll(
        () -> assertEquals(0, exit, "exit code of the daemon after SIGTERM"),
        () -> assertStillRunning(churnBefore, churnTotal),
        () -> assertStillRunning(linesBefore, linesTotal));

    node.start();

    assertEquals("checkpointed", api.state(parked), "a user checkpoint stays one across a restart");
    for (String pid : List.of(churnPid, linesPid)) {
      String state = api.state(pid);
      assertTrue(
          state.equals("running") || state.equals("exited"),
          pid + " resumed after the restart, but is " + api.status(pid));
    }
    assertEnded(api, churnPid, churnRef);
    assertEnded(api, linesPid, linesRef);

    JsonNode restored = api.restore(parked, "compiled");
    assertEquals("compiled", restored.path("engine").asText(), "engine after restore: " + restored);
    assertEnded(api, parked, linesRef);
  }

  static NodeApi.Output runToEnd(NodeApi api, String module, List<String> args) {
    String pid = api.run(module, args);
    JsonNode end = api.awaitFinal(pid, RUN_TIMEOUT);
    assertEquals("exited", end.path("state").asText(), "reference run " + args + ": " + end);
    assertEquals(0, end.path("exitCode").asInt(-1), "reference run " + args + ": " + end);
    return api.output(pid);
  }

  static void assertEnded(NodeApi api, String pid, NodeApi.Output expected) {
    JsonNode end = api.awaitFinal(pid, RUN_TIMEOUT);
    assertEquals("exited", end.path("state").asText(), pid + ": " + end);
    assertEquals(0, end.path("exitCode").asInt(-1), pid + ": " + end);
    NodeApi.Output out = api.output(pid);
    assertArrayEquals(
        expected.stdout(), out.stdout(), pid + " stdout differs from the reference run");
    assertArrayEquals(
        expected.stderr(), out.stderr(), pid + " stderr differs from the reference run");
  }

  /** The process was mid-way when the daemon was stopped, so the test did interrupt it. */
  private static void assertStillRunning(JsonNode before, long total) {
    assertEquals("running", before.path("state").asText(), "just before SIGTERM: " + before);
    assertTrue(
        before.path("stdoutBytes").asLong() < total,
        "it had not written everything yet: " + before);
  }
}
