package dev.ferry.node.process;

import static dev.ferry.node.process.ProcessHarness.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A freeze that cannot complete fails cleanly, and the process runs on to the right result. */
class FreezeFailureTest {
  @TempDir Path dir;

  @Test
  void checkpointOfCpuLoopWithoutLoopPointsTimesOutAndProcessKeepsRunning() {
    try (ProcessHarness node =
        new ProcessHarness(dir, Map.of("ferry.runtime.freeze-timeout", "300ms"))) {
      String hash = node.upload("spin");
      ProcessInfo reference = node.run(hash, Engine.COMPILED, List.of("30000000"), Map.of());
      get(node.processes.awaitExit(reference.id()));
      byte[] expected = node.log(reference.id(), LogStream.STDOUT);

      ProcessInfo p = node.run(hash, Engine.INTERPRETER, List.of("30000000"), Map.of());
      waitForOutput(node, p.id(), "start\n".length());
      FerryException e =
          assertThrows(FerryException.class, () -> get(node.processes.checkpoint(p.id(), false)));
      assertEquals(FerryException.Kind.TIMEOUT, e.kind());
      assertTrue(e.getMessage().contains("preemptible"), e.getMessage());
      assertEquals(ProcessState.RUNNING, get(node.processes.status(p.id())).state());

      ProcessInfo done = get(node.processes.awaitExit(p.id()));
      assertEquals(ProcessState.EXITED, done.state());
      assertEquals(0, done.exitCode());
      assertArrayEquals(expected, node.log(p.id(), LogStream.STDOUT));
    }
  }

  @Test
  void checkpointWhoseStackWouldOverflowTheAsyncifyBufferFailsAndProcessKeepsRunning() {
    // churn recurses 2000 deep; unwinding that needs ~72 KB, more than a 16 KiB buffer.
    try (ProcessHarness node =
        new ProcessHarness(dir, Map.of("ferry.runtime.asyncify-buffer-bytes", "16KiB"))) {
      String hash = node.upload("churn");
      ProcessInfo reference = node.run(hash, Engine.COMPILED, List.of("60", "2000"), Map.of());
      get(node.processes.awaitExit(reference.id()));
      byte[] expected = node.log(reference.id(), LogStream.STDOUT);

      for (Engine engine : Engine.values()) {
        ProcessInfo p = node.run(hash, engine, List.of("60", "2000"), Map.of());
        int refused = 0;
        for (int i = 0; i < 5; i++) {
          try {
            get(node.processes.checkpoint(p.id(), false));
            get(node.processes.restore(p.id(), engine));
          } catch (FerryException e) {
            if (get(node.processes.status(p.id())).state().isFinal()) {
              break;
            }
            assertEquals(FerryException.Kind.CONFLICT, e.kind(), e.getMessage());
            assertTrue(e.getMessage().contains("asyncify-buffer-bytes"), e.getMessage());
            refused++;
          }
        }
        assertTrue(refused > 0, "no freeze was refused on " + engine);
        ProcessInfo done = get(node.processes.awaitExit(p.id()));
        assertEquals(ProcessState.EXITED, done.state(), "error: " + done.error());
        assertArrayEquals(expected, node.log(p.id(), LogStream.STDOUT), "output on " + engine);
      }
    }
  }

  static void waitForOutput(ProcessHarness node, String pid, long bytes) {
    long deadline = System.currentTimeMillis() + 30_000;
    while (get(node.processes.status(pid)).stdoutBytes() < bytes) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("process " + pid + " wrote nothing in 30 s");
      }
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
    }
  }
}
