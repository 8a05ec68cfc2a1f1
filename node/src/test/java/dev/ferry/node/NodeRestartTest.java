package dev.ferry.node;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.config.FerrySettings;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessService;
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.RunRequest;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A node that is closed (as on SIGTERM) and started again on the same data dir loses nothing. */
class NodeRestartTest {
  @TempDir Path dir;

  static <T> T get(CompletionStage<T> s) throws Exception {
    return s.toCompletableFuture().get(120, TimeUnit.SECONDS);
  }

  static byte[] stdout(ProcessService svc, String pid) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    long off = 0;
    while (true) {
      LogChunk c = get(svc.readLog(pid, LogStream.STDOUT, off, 1 << 20, Duration.ZERO));
      if (c.data().length == 0) {
        return out.toByteArray();
      }
      out.writeBytes(c.data());
      off = c.nextOffset();
    }
  }

  @Test
  void runningProcessesResumeAfterNodeRestartWithIdenticalOutput() throws Exception {
    FerrySettings settings = TestNodes.settings(dir, Map.of());
    byte[] expected;
    String lines;
    String churn;
    String checkpointed;
    try (FerryNode node = FerryNode.start(settings)) {
      ProcessService svc = node.service();
      String linesHash = get(svc.uploadModule(TestNodes.guest("lines"), false)).hash();
      ProcessInfo ref =
          get(
              svc.run(
                  new RunRequest(
                      linesHash,
                      Engine.COMPILED,
                      List.of("30000", "1000", "unbuffered"),
                      Map.of(),
                      Map.of())));
      get(svc.awaitExit(ref.id()));
      expected = stdout(svc, ref.id());

      lines =
          get(svc.run(
                  new RunRequest(
                      linesHash,
                      Engine.INTERPRETER,
                      List.of("30000", "1000", "unbuffered"),
                      Map.of(),
                      Map.of())))
              .id();
      String churnHash = get(svc.uploadModule(TestNodes.guest("churn"), false)).hash();
      churn =
          get(svc.run(
                  new RunRequest(
                      churnHash, Engine.COMPILED, List.of("100", "1000"), Map.of(), Map.of())))
              .id();
      // one the operator checkpointed: stays checkpointed across the restart
      checkpointed =
          get(svc.run(
                  new RunRequest(
                      churnHash, Engine.INTERPRETER, List.of("100", "1000"), Map.of(), Map.of())))
              .id();
      Thread.sleep(150);
      get(svc.checkpoint(checkpointed, false));
      while (get(svc.status(lines)).stdoutBytes() < expected.length / 3) {
        Thread.sleep(5);
      }
    } // close(): checkpoints lines and churn
    try (FerryNode node = FerryNode.start(settings)) {
      ProcessService svc = node.service();
      assertEquals(ProcessState.CHECKPOINTED, get(svc.status(checkpointed)).state());
      ProcessInfo l = get(svc.awaitExit(lines));
      assertEquals(ProcessState.EXITED, l.state(), "error: " + l.error());
      assertEquals(0, l.exitCode());
      assertArrayEquals(expected, stdout(svc, lines));
      ProcessInfo c = get(svc.awaitExit(churn));
      assertEquals(0, c.exitCode());
      assertTrue(new String(stdout(svc, churn)).contains("done "));
      get(svc.restore(checkpointed, Engine.COMPILED));
      assertEquals(0, get(svc.awaitExit(checkpointed)).exitCode());
    }
  }
}
