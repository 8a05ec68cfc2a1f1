package dev.ferry.integration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The same program gives the same bytes on another JVM and another engine: one daemon on the test
 * JVM's Java 17 with the compiled engine, one on Java 25 (Temurin) with the interpreter, each its
 * own one-node cluster. Moving a process between them needs cross-node migration, which the HTTP
 * API does not offer yet; until then the Java 25 node must run churn to the Java 17 node's result,
 * across a SIGTERM restart, and switch engines at a checkpoint.
 */
class HeterogeneousJvmTest {
  @RegisterExtension static final NodeHarness nodes = new NodeHarness();

  static final List<String> CHURN = List.of("150", "2000");
  static final Duration RUN_TIMEOUT = Duration.ofSeconds(90);

  @Test
  @Timeout(180)
  void aJava25DaemonRunsChurnToTheJava17ResultAcrossASigtermRestart() {
    Optional<JavaRuntime> jdk25 = JavaRuntime.jdk25();
    assumeTrue(jdk25.isPresent(), "no Java 25 at " + System.getProperty("ferry.it.jdk25"));
    DaemonProcess java17 = nodes.create("compiled", JavaRuntime.current(), List.of());
    DaemonProcess java25 = nodes.create("interpreter", jdk25.get(), List.of());
    java17.launch();
    java25.launch();
    java17.awaitReady();
    java25.awaitReady();
    assertFalse(
        java25.log().contains("WARNING: "),
        "the JVM warned about a flag it lacks:\n" + java25.logTail());

    // The reference, on Java 17 / compiled, runs while the Java 25 node works.
    String reference = java17.api().run(java17.api().upload(Guests.wasm("churn")), CHURN);
    NodeApi b = java25.api();
    String churn = b.upload(Guests.wasm("churn"));
    String pid = b.run(churn, CHURN);
    // churn's output is about 5 KB; stop the node a third of the way through.
    JsonNode before =
        b.awaitStatus(
            pid, s -> s.path("stdoutBytes").asLong() >= 1700, "a third of its output", RUN_TIMEOUT);
    assertEquals("running", before.path("state").asText(), "just before SIGTERM: " + before);

    assertEquals(0, java25.stop(), "exit code of the Java 25 daemon after SIGTERM");
    java25.start();

    JsonNode end = b.awaitFinal(pid, RUN_TIMEOUT);
    JsonNode refEnd = java17.api().awaitFinal(reference, RUN_TIMEOUT);
    assertEquals("exited", refEnd.path("state").asText(), "on Java 17: " + refEnd);
    assertEquals(0, refEnd.path("exitCode").asInt(-1), "on Java 17: " + refEnd);
    assertEquals("exited", end.path("state").asText(), "on Java 25: " + end);
    assertEquals(0, end.path("exitCode").asInt(-1), "on Java 25: " + end);
    NodeApi.Output expected = java17.api().output(reference);
    assertTrue(
        expected.stdoutText().contains("\ndone "), "reference output: " + expected.stdoutText());
    assertArrayEquals(
        expected.stdout(),
        b.output(pid).stdout(),
        "churn on Java 25 across a restart vs Java 17 compiled");

    // The Java 25 node also switches a process from the interpreter to the compiler.
    String lines = b.run(b.upload(Guests.wasm("lines")), List.of("20000", "1000", "unbuffered"));
    b.awaitStatus(lines, s -> s.path("stdoutBytes").asLong() > 0, "some output", RUN_TIMEOUT);
    b.checkpoint(lines, false);
    assertEquals("compiled", b.restore(lines, "compiled").path("engine").asText());
    JsonNode linesEnd = b.awaitFinal(lines, RUN_TIMEOUT);
    assertEquals(
        0,
        linesEnd.path("exitCode").asInt(-1),
        "lines on Java 25, compiled after a checkpoint: " + linesEnd);
    assertArrayEquals(
        Guests.linesStdout(20000),
        b.output(lines).stdout(),
        "lines on Java 25 across an engine switch");
  }
}
