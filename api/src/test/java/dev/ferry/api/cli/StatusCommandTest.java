package dev.ferry.api.cli;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.service.Engine;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import org.junit.jupiter.api.Test;

class StatusCommandTest {
  private static ProcessInfo running(String outputHeld) {
    return new ProcessInfo(
        "p-1",
        ProcessState.RUNNING,
        Engine.COMPILED,
        "n2",
        "abc",
        List.of(),
        null,
        1 << 20,
        0,
        Instant.parse("2025-01-02T03:04:05Z"),
        null,
        null,
        null,
        null,
        outputHeld);
  }

  @Test
  void saysWhenTheStoreHoldsTheOutputBack() {
    String held =
        "since 2025-01-02T03:04:06Z its node's store refuses its output (store full: …); 1048576"
            + " bytes wait in memory, and the process waits at its next write to stdout or stderr";
    String shown = StatusCommand.describe(running(held), ZoneOffset.UTC);
    assertTrue(shown.contains("Output held:") && shown.contains(held), shown);
    assertFalse(
        StatusCommand.describe(running(null), ZoneOffset.UTC).contains("Output held"),
        "only while it is held");
  }
}
